"""The digest of every env's first observation, computed where the observation lives.

`rollrec.format.start_state` specifies ``meta["start_state"]`` (what `rollrec compare` pairs runs
by) and computes it with numpy; `StartDigest` computes the same words and polynomial hash with
torch on the recording device, once, at the first `Recorder.record`, and never makes the host
wait: on CUDA the ``[N]`` digests are copied to pinned memory ``non_blocking`` on the current
stream and an event is recorded after them; `StartDigest.ready` asks the event (no wait) and
`StartDigest.entry` waits for it only when the recording closes (by then it completed long ago).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from rollrec.engine.cuda_host import host_to_device
from rollrec.format import start_state as spec


def _words(t: torch.Tensor) -> torch.Tensor:
    """``[N, D]`` int64 words of ``t [N, ...]``, each in ``0 .. 2**32 - 1`` and congruent modulo
    ``M`` to `rollrec.format.start_state.words`' (which reduces them: the digest does, below)."""
    flat = t.reshape(t.shape[0], -1)
    if flat.is_floating_point():
        f = flat.to(torch.float32) + 0.0  # -0.0 + 0.0 is +0.0
        bits = f.view(torch.int32).to(torch.int64) & 0xFFFFFFFF
        nan = torch.isnan(f)
        if f.device.type != "cpu" or bool(nan.any()):  # on CPU the check is cheaper than the rewrite
            bits = torch.where(nan, torch.full_like(bits, spec.CANONICAL_NAN), bits)
        return bits
    if flat.is_complex():
        raise ValueError(f"cannot digest a {flat.dtype} observation")
    return torch.remainder(flat.to(torch.int64), spec.MODULUS)


def _mod(x: torch.Tensor) -> torch.Tensor:
    """``x mod M`` up to one ``M`` (``M = 2**31 - 1``: ``2**31 = 1 mod M``), for ``0 <= x < 2**63``."""
    return (x & spec.MODULUS).add_(x >> 31)


class StartDigest:
    """Per-env digests of the first step's ``parts`` (the obs as recorded: ``[N, ...]`` tensors in field
    order, all on one device), computed at construction without a host wait."""

    def __init__(self, parts: Sequence[torch.Tensor], fields: Sequence[str] = spec.FIELDS):
        self.fields = tuple(fields)
        words = torch.cat([_words(p) for p in parts], dim=1) if len(parts) > 1 else _words(parts[0])
        device = words.device
        powers = host_to_device(torch.from_numpy(spec.powers(words.shape[1])), device)
        # words < 2**32 and powers < 2**31: each product < 2**63; reduced, each is < 2**33, so a sum
        # of up to 2**30 of them stays in int64. Mersenne reductions instead of divisions: 2x faster on CPU.
        digests = torch.remainder(_mod(_mod(_mod(words * powers).sum(dim=1))), spec.MODULUS)
        self._event = None
        if device.type == "cuda":  # queued on the device's current stream, where record() queues its copies
            self._host = torch.empty(digests.shape, dtype=torch.int64, pin_memory=True)
            self._host.copy_(digests, non_blocking=True)
            self._event = torch.cuda.Event()
            self._event.record(torch.cuda.current_stream(device))
        else:
            self._host = digests

    def ready(self) -> bool:
        """Whether the digests have reached the host (never waits)."""
        return self._event is None or bool(self._event.query())

    def entry(self) -> dict:
        """The ``meta["start_state"]`` entry (waits for the copy if it has not completed)."""
        if self._event is not None:
            self._event.synchronize()
        return spec.encode(np.asarray(self._host.numpy(), dtype=np.int64).astype(np.uint32), self.fields)


__all__ = ["StartDigest"]

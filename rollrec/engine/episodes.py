"""Episodes on the device: each env's return and start, and how episodes end at each step.

`EpisodeTracker.step` runs inside `Recorder.record` at every recorded step (``every=k``
included: returns add up every step's reward, in float64, before any dtype cast). It writes,
for ring slot ``s`` and step ``j`` of the k steps that slot stands for::

    ends[s, j, e]    bool     env e's episode ended at this step (``done``)
    truncs[s, j, e]  bool     ... by a time limit (``done & truncated``)
    caps[s, j, e]    bool     ... and the trigger captures it (``capture=`` only)
    rets[s, j, e]    float64  env e's episode return so far, this step included

then resets the return and the start of the envs whose episode ended. All of it is a fixed
number of element-wise ops on ``[N]`` tensors: nothing depends on how many episodes end, so
nothing synchronises. The end buffers reach the host with each flushed job (in its staging
buffer on CUDA), where the writer thread turns them into index entries (`rollrec.engine.gather`). The buffers share the ring's
slots and its backpressure: ``capacity x every x N x 11`` bytes (12 with a trigger).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from rollrec.engine.volume import EpisodeEnds, Trigger


class EpisodeTracker:
    """Per-env episode state on ``device`` and the per-step end buffers (see the module docstring)."""

    def __init__(self, num_envs: int, device: torch.device, capacity: int, every: int, trigger: Trigger | None):
        self.trigger = trigger
        self.every = every
        shape = (capacity, every, num_envs)
        # Normal tensors even when the first record() runs under torch.inference_mode(): close()
        # updates them in place (`end_early`), maybe outside it.
        with torch.inference_mode(False):
            self.ret = torch.zeros(num_envs, dtype=torch.float64, device=device)
            self.start = torch.zeros(num_envs, dtype=torch.int64, device=device)
            self.ends = torch.zeros(shape, dtype=torch.bool, device=device)
            self.truncs = torch.zeros(shape, dtype=torch.bool, device=device)
            self.rets = torch.zeros(shape, dtype=torch.float64, device=device)
            self.caps = torch.zeros(shape, dtype=torch.bool, device=device) if trigger is not None else None
            # Views built once: indexing costs more host time than the ops themselves on CUDA.
            self._views = [
                [(self.ends[s, j], self.truncs[s, j], self.rets[s, j], None if self.caps is None else self.caps[s, j])
                 for j in range(every)]
                for s in range(capacity)
            ]

    @property
    def nbytes(self) -> int:
        bufs = [self.ret, self.start, self.ends, self.truncs, self.rets] + ([self.caps] if self.caps is not None else [])
        return sum(t.numel() * t.element_size() for t in bufs)

    def end_early(self, slot: int, sub: int) -> None:
        """The recording ended after step ``sub - 1`` of slot ``slot``: its later steps end nothing
        (their buffers still hold what an earlier pass over the ring wrote)."""
        self.ends[slot, sub:].zero_()

    def step(self, slot: int, sub: int, t: int, rew: torch.Tensor, done: torch.Tensor,
             truncated: torch.Tensor | None, given: Mapping[str, Any]) -> None:
        """Account for recorded step ``t`` (step ``sub`` of ring slot ``slot``). No device sync."""
        end, trunc, ret_out, cap = self._views[slot][sub]
        d = done if done.dtype == torch.bool else done != 0
        self.ret.add_(rew)
        end.copy_(d)
        if truncated is None:
            trunc.zero_()
        else:
            torch.logical_and(d, truncated if truncated.dtype == torch.bool else truncated != 0, out=trunc)
        ret_out.copy_(self.ret)
        if cap is not None:
            kind = self.trigger.kind
            if kind == "terminated":
                torch.logical_and(d, trunc.logical_not(), out=cap)
            elif kind == "threshold":
                torch.lt(self.ret, self.trigger.threshold, out=cap)
                cap.logical_and_(d)
            else:
                ends = EpisodeEnds(t, d, d & ~trunc, trunc, self.ret, (t + 1) - self.start, given)
                cap.copy_(self.trigger(ends))
        self.ret.masked_fill_(d, 0.0)
        self.start.masked_fill_(d, t + 1)


__all__ = ["EpisodeTracker"]

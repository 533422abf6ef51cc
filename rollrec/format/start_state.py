"""``meta["start_state"]``: what each env started from, so that two rollouts can be paired env by env.

Two evaluations are *paired* when env k of one faced the same start as env k of the other (same
seeds, same initial states): their difference then cancels what the start contributes, and
`rollrec compare` pairs them. The writers record a digest of every env's first observation
(``obs`` at the first recorded step: what the env was reset to, before any action), computed on
the recording device without a host sync (`rollrec.engine.start_state`), or from the array
(`save_rollout`, this module). ``meta["start_state"]``::

    {"hash": "poly31-f32", "fields": ["obs"], "num_envs": N,
     "digest": "<16 hex digits: BLAKE2b-64 of env_digests' bytes>",
     "env_digests": "<base64 of N little-endian uint32: one digest per env>"}

The per-env digest (``hash`` ``poly31-f32``): the env's first observation, flattened in field order
(a dict observation: its entries in key order, each flattened), is read as words: a float as the
bits of its float32 value (-0.0 as 0.0, every NaN as 0x7FC00000), a bool as 0 or 1, an integer as
itself; each word reduced modulo ``M = 2**31 - 1``; the digest is ``sum_j word_j * BASE**j mod M``,
a polynomial hash (two different observations of D words collide with probability at most D / M).
Observations equal after a cast to float32 have equal digests (float64 and float32 recordings of
the same reset pair). A sharded rollout's ``meta`` holds the digests of all its envs, in env
order (merged from its shards by `merge`).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rollrec.format.errors import RolloutFormatError

HASH = "poly31-f32"
MODULUS = (1 << 31) - 1
BASE = 1_000_003
CANONICAL_NAN = 0x7FC00000
#: The fields digested, in order.
FIELDS = ("obs",)


def powers(n: int) -> np.ndarray:
    """``[n]`` int64 ``BASE**j mod MODULUS`` for ``j < n`` (by doubling: no Python loop over ``n``)."""
    out = np.ones(max(int(n), 1), np.int64)
    filled = 1
    while filled < n:
        step = min(filled, n - filled)
        out[filled : filled + step] = out[:step] * pow(BASE, filled, MODULUS) % MODULUS
        filled += step
    return out[:n]


def words(x: np.ndarray) -> np.ndarray:
    """``[N, D]`` int64 in ``0..MODULUS-1``: the words of ``x [N, ...]`` per env (see the module docstring)."""
    x = np.asarray(x)
    flat = x.reshape(x.shape[0], -1)
    if flat.dtype.kind == "f":
        f = flat.astype(np.float32) + np.float32(0.0)  # -0.0 + 0.0 is +0.0
        bits = f.view(np.uint32).astype(np.int64)
        bits[np.isnan(f)] = CANONICAL_NAN
    elif flat.dtype.kind in "biu":
        bits = flat.astype(np.int64)
    else:
        raise ValueError(f"cannot digest a {flat.dtype} observation")
    return bits % MODULUS


def env_digests(parts: Sequence[np.ndarray]) -> np.ndarray:
    """``[N]`` uint32 digest of each env's first observation, given as ``parts`` (``[N, ...]`` each,
    in field order)."""
    if not parts:
        raise ValueError("nothing to digest")
    w = np.concatenate([words(p) for p in parts], axis=1)
    return ((w * powers(w.shape[1]) % MODULUS).sum(axis=1) % MODULUS).astype(np.uint32)


def encode(digests: np.ndarray, fields: Sequence[str] = FIELDS) -> dict[str, Any]:
    """The ``meta["start_state"]`` entry for per-env ``digests`` ``[N]``."""
    d = np.ascontiguousarray(digests, dtype="<u4")
    return {"hash": HASH, "fields": list(fields), "num_envs": int(d.size), "digest": whole_digest(d),
            "env_digests": base64.b64encode(d.tobytes()).decode("ascii")}


def whole_digest(digests: np.ndarray) -> str:
    """16 hex digits naming every env's digest at once (BLAKE2b-64 of their little-endian bytes)."""
    return hashlib.blake2b(np.ascontiguousarray(digests, dtype="<u4").tobytes(), digest_size=8).hexdigest()


@dataclass(frozen=True)
class StartState:
    """A decoded ``meta["start_state"]``: ``digests`` ``[N]`` uint32, the ``fields`` and ``hash`` used."""

    digests: np.ndarray
    fields: tuple[str, ...]
    hash: str
    digest: str


def decode(entry: Any, where: str = "meta['start_state']") -> StartState:
    """`StartState` of an entry; `RolloutFormatError` naming what is wrong."""
    if not isinstance(entry, Mapping):
        raise RolloutFormatError(f"{where}: expected an object, got {type(entry).__name__}")
    try:
        n = entry["num_envs"]
        fields, kind, text = entry["fields"], entry["hash"], entry["env_digests"]
        if not isinstance(n, int) or n < 0 or not isinstance(text, str) or not isinstance(kind, str):
            raise TypeError("num_envs must be an integer >= 0, hash and env_digests strings")
        if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields):
            raise TypeError("fields must be a list of names")
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (KeyError, TypeError, ValueError) as exc:
        raise RolloutFormatError(f"{where}: {exc}") from None
    if len(raw) != 4 * n:
        raise RolloutFormatError(f"{where}: env_digests holds {len(raw)} bytes, expected {4 * n} for {n} envs")
    digests = np.frombuffer(raw, dtype="<u4").astype(np.uint32)
    return StartState(digests, tuple(fields), kind, whole_digest(digests))


def merge(parts: Sequence[tuple[int, int, Any]], num_envs: int) -> dict[str, Any] | None:
    """The entry of a sharded rollout from its shards' ``(env_offset, num_envs, entry)``; None unless
    every env is covered by a shard's readable entry of one kind."""
    digests = np.zeros(num_envs, np.uint32)
    covered = np.zeros(num_envs, bool)
    kinds = set()
    for offset, n, entry in parts:
        if entry is None:
            return None
        try:
            state = decode(entry)
        except RolloutFormatError:
            return None
        if len(state.digests) != n or offset < 0 or offset + n > num_envs:
            return None
        digests[offset : offset + n] = state.digests
        covered[offset : offset + n] = True
        kinds.add((state.hash, state.fields))
    if not covered.all() or len(kinds) != 1:
        return None
    kind, fields = kinds.pop()
    out = encode(digests, fields)
    out["hash"] = kind
    return out


__all__ = ["BASE", "FIELDS", "HASH", "MODULUS", "StartState", "decode", "encode", "env_digests", "merge", "powers",
           "whole_digest", "words"]

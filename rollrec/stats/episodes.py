"""Every episode of one run, read for the statistics: `read_episodes` -> `RunEpisodes`.

A format-v1 file (or a sharded rollout) is read in blocks of env columns (``done``,
``truncated``, ``rew``, ``rew_terms``: about `BLOCK_ELEMENTS` values at a time, so memory stays
bounded whatever the file size) and split into episodes by the one segmentation kernel
(`rollrec.io.segments`); a format-v2 file's episodes come from its episode index (exact returns
over every recorded step), with per-term sums from ``rew_terms`` where every env kept it at every
step. Envs of a sharded rollout whose shard is missing are left out (``present``).

Plain numpy over `rollrec.io`; no Python loop over envs or episodes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rollrec.format.errors import RolloutFormatError
from rollrec.format.start_state import StartState, decode
from rollrec.io.protocol import ReadableRollout
from rollrec.io.segments import TERMINATED, TRUNCATED, UNFINISHED, running_sum, segment
from rollrec.stats.sample import Sample

#: Values (steps x envs x terms) per block read: bounds the float64 working set to ~64 MB.
BLOCK_ELEMENTS = 1 << 23


@dataclass(frozen=True)
class RunEpisodes:
    """Every episode of every env of one run, env-major (env 0's episodes in time order, then env 1's).

    Arrays are ``[E]``: ``env``, ``start``/``stop`` (recorded steps, stop exclusive), ``end``
    (`rollrec.io.segments` codes: unfinished, terminated, truncated), ``first`` (the env's first
    episode), ``ret`` (float64 return). ``terms`` is ``[E, K]`` float64 per-term sums over each
    episode, or None where the file does not hold every env's terms at every step (``notes`` says
    why). ``present`` ``[N]``: envs with data (False for a sharded rollout's missing shards).
    ``start_state``: every env's first observation's digest (None: not recorded; ``start_note``
    says why). ``seed``: ``meta["seed"]`` when recorded.
    """

    path: Path
    num_envs: int
    env: np.ndarray
    start: np.ndarray
    stop: np.ndarray
    end: np.ndarray
    first: np.ndarray
    ret: np.ndarray
    terms: np.ndarray | None
    term_names: tuple[str, ...]
    present: np.ndarray
    dt: float
    env_name: str
    start_state: StartState | None
    start_note: str | None
    seed: Any
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.env)

    @property
    def length(self) -> np.ndarray:
        """``[E]`` int64 steps in each episode (recorded steps)."""
        return self.stop - self.start

    def selected(self, first_episode: bool = False) -> np.ndarray:
        """``[E]`` bool: the episodes of present envs (only each env's first with ``first_episode``)."""
        keep = self.present[self.env]
        return keep & self.first if first_episode else keep

    def counts(self, first_episode: bool = False) -> dict[str, int]:
        """``{"completed", "terminated", "truncated", "unfinished"}`` episodes of the selection."""
        end = self.end[self.selected(first_episode)]
        return {"completed": int((end != UNFINISHED).sum()), "terminated": int((end == TERMINATED).sum()),
                "truncated": int((end == TRUNCATED).sum()), "unfinished": int((end == UNFINISHED).sum())}

    def sample(self, first_episode: bool = False, terms: tuple[str, ...] | None = None) -> Sample:
        """The completed episodes of the selection as a `Sample`, with the sums of reward terms ``terms``
        (default: every term the run holds; none when it holds no per-term sums)."""
        keep = self.selected(first_episode) & (self.end != UNFINISHED)
        names = self.term_names if terms is None else terms
        if self.terms is None or not names:
            sums = np.zeros((int(keep.sum()), 0))
        else:
            sums = self.terms[keep][:, [self.term_names.index(n) for n in names]]
        return Sample(self.env[keep], self.ret[keep], self.length[keep], self.end[keep] == TERMINATED, sums,
                      self.num_envs)


def read_episodes(rollout: ReadableRollout, *, progress: Callable[[float], None] | None = None,
                  block_elements: int = BLOCK_ELEMENTS) -> RunEpisodes:
    """The `RunEpisodes` of an opened rollout (a `rollrec.load` result). ``progress(fraction)`` is
    called after each block read."""
    notes: list[str] = []
    present = np.asarray(getattr(rollout, "env_present", np.ones(rollout.N, bool)), dtype=bool)
    if rollout.layout.has_index:
        parts = _from_index(rollout, notes, block_elements, progress)
    else:
        parts = _from_blocks(rollout, block_elements, progress)
    env, start, stop, end, first, ret, terms = parts
    names = tuple(rollout.reward_term_names)
    if rollout.terms_are_env_means:
        terms = None
        notes.append("its reward terms are means over envs (the original recorder's files): per-term sums left out")
    bad = (end != UNFINISHED) & ~np.isfinite(ret) & present[env]
    if bad.any():
        notes.append(f"{int(bad.sum())} completed episodes with a non-finite return are left out")
        end = np.where(bad, UNFINISHED, end).astype(np.int8)
    state, note = _start_state(rollout)
    return RunEpisodes(Path(rollout.path), rollout.N, env, start, stop, end, first, ret, terms, names, present,
                       float(rollout.dt), str(rollout.env_name), state, note, rollout.meta.get("seed"), notes)


def _from_blocks(rollout: ReadableRollout, block_elements: int, progress: Callable[[float], None] | None):
    """Episodes of a file without an index: ``done``/``truncated``/``rew``/``rew_terms`` in env blocks."""
    T, N = rollout.T, rollout.N
    K = len(rollout.reward_term_names) if "rew_terms" in rollout else 0
    has_truncated = "truncated" in rollout
    step = max(1, int(block_elements) // max(1, T * max(1, K)))
    out: list[tuple[np.ndarray, ...]] = []
    for a in range(0, N, step):
        b = min(N, a + step)
        done = np.asarray(rollout.read("done", (0, T), (a, b)), dtype=bool)
        truncated = np.asarray(rollout.read("truncated", (0, T), (a, b)), dtype=bool) if has_truncated else None
        seg = segment(done, truncated)
        ret = seg.sums(running_sum(np.array(rollout.read("rew", (0, T), (a, b)), dtype=np.float64)))
        terms = seg.sums(running_sum(np.array(rollout.read("rew_terms", (0, T), (a, b)), dtype=np.float64))) \
            if K else np.zeros((len(seg), 0))
        out.append((seg.env + a, seg.start, seg.stop, seg.end, seg.first, ret, terms))
        if progress is not None:
            progress(b / N)
    if not out:
        empty = np.zeros(0, np.int64)
        return empty, empty, empty, np.zeros(0, np.int8), np.zeros(0, bool), np.zeros(0), np.zeros((0, K))
    return tuple(np.concatenate(p) for p in zip(*out))


def _from_index(rollout: ReadableRollout, notes: list[str], block_elements: int,
                progress: Callable[[float], None] | None):
    """Episodes of a file with an episode index (format v2); per-term sums where ``rew_terms`` holds
    every env at every recorded step."""
    index = rollout.index
    order = np.lexsort((index.start, index.env))  # env-major, in time
    env, start, stop = index.env[order], index.start[order], index.stop[order]
    end, ret = index.end[order].astype(np.int8), index.returns[order]
    first = np.ones(len(env), bool)
    first[1:] = env[1:] != env[:-1]
    K = len(rollout.reward_term_names)
    every = rollout.layout.every
    if K and "rew_terms" in rollout and rollout.kind("rew_terms") == "all" and every == 1:
        terms = _index_term_sums(rollout, env, start, stop, K, block_elements, progress)
    else:
        terms = None
        if K:
            why = f"every={every} sums steps into rows" if every > 1 else "rew_terms was not kept for every env"
            notes.append(f"per-term sums left out: {why}")
    return env, start, stop, end, first, ret, terms


def _index_term_sums(rollout: ReadableRollout, env: np.ndarray, start: np.ndarray, stop: np.ndarray, K: int,
                     block_elements: int, progress: Callable[[float], None] | None) -> np.ndarray:
    """``[E, K]`` each indexed episode's per-term sums, from running sums of ``rew_terms`` per env block."""
    T, N = rollout.T, rollout.N
    out = np.zeros((len(env), K))
    step = max(1, int(block_elements) // max(1, T * K))
    for a in range(0, N, step):
        b = min(N, a + step)
        rows = np.flatnonzero((env >= a) & (env < b))
        if rows.size:
            running = running_sum(np.array(rollout.read("rew_terms", (0, T), (a, b)), dtype=np.float64))
            col = env[rows] - a
            at_end = running[np.minimum(stop[rows], T) - 1, col]
            before = np.where((start[rows] > 0)[:, None], running[np.maximum(start[rows], 1) - 1, col], 0.0)
            out[rows] = at_end - before
        if progress is not None:
            progress(b / N)
    return out


def _start_state(rollout: ReadableRollout) -> tuple[StartState | None, str | None]:
    entry = rollout.meta.get("start_state")
    if entry is None:
        return None, "it does not record what its envs started from (meta['start_state'])"
    try:
        state = decode(entry, f"{rollout.path}: meta['start_state']")
    except RolloutFormatError as exc:
        return None, str(exc)
    if len(state.digests) != rollout.N:
        return None, f"its start_state covers {len(state.digests)} envs, not {rollout.N}"
    return state, None


__all__ = ["BLOCK_ELEMENTS", "RunEpisodes", "read_episodes"]

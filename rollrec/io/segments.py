"""Episodes from per-step flags: the one segmentation kernel.

An env's episode ends after a step whose ``done`` is set (terminated, or truncated by a time
limit when ``truncated`` is set too); each env's last episode may still be running at the last
step (*unfinished*). `segment` finds every episode of a block of env columns ``[T, n]`` at once,
vectorised (no Python loop over envs or episodes), env-major: env 0's episodes in time order,
then env 1's. `Segments.sums` turns the running sum over steps of any per-step value (`running_sum`
of ``rew``, of ``rew_terms``) into each episode's sum.

Everything that splits a rollout into episodes uses it: the reader's episode index of a v1 file
and its per-env helpers (`rollrec.io.episode_index`), the viewer's overview
(`rollrec.viewer.overview`) and ``rollrec info`` (`rollrec.io.summary`). A v2 file stores its
episodes instead (`rollrec.format.v2`), with the same end codes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: How an episode ended (the ``end`` column of a v2 episode index): still running at the last
#: step, terminated, truncated (time limit).
UNFINISHED, TERMINATED, TRUNCATED = 0, 1, 2

#: Rows of at least this many values are summed one row add at a time (`running_sum`).
_ROW_LOOP_MIN = 256


@dataclass(frozen=True)
class Segments:
    """The episodes of a block of env columns, env-major; arrays are ``[E]``."""

    env: np.ndarray  # int64, the column within the block
    start: np.ndarray  # int64, first step
    stop: np.ndarray  # int64, one past the last step
    end: np.ndarray  # int8, UNFINISHED, TERMINATED or TRUNCATED
    first: np.ndarray  # bool, the first episode of its env

    def __len__(self) -> int:
        return len(self.env)

    def sums(self, running: np.ndarray) -> np.ndarray:
        """``[E, ...]`` each episode's sum of a value whose running sum over the steps is ``running``
        (``[T, n, ...]``, see `running_sum`): its running sum at its last step less the previous
        episode's of the same env."""
        at_end = running[self.stop - 1, self.env]
        out = at_end.copy()
        out[1:] -= at_end[:-1]
        out[self.first] = at_end[self.first]
        return out

    def number(self) -> np.ndarray:
        """``[E]`` int64 the index of each episode within its env (0 for the first)."""
        begins = np.flatnonzero(self.first)
        return np.arange(len(self.env)) - np.repeat(begins, np.diff(np.append(begins, len(self.env))))


def segment(done: np.ndarray, truncated: np.ndarray | None = None) -> Segments:
    """The episodes of ``done`` ``[T, n]`` bool (and ``truncated``, None: no time limits), env-major.

    Every env has at least one episode when T > 0 (its last one ends, or stops unfinished, at
    step T - 1); with T == 0 there are none.
    """
    done = np.asarray(done, dtype=bool)
    T, n = done.shape
    if T == 0 or n == 0:
        empty = np.zeros(0, np.int64)
        return Segments(empty, empty, empty, np.zeros(0, np.int8), np.zeros(0, bool))
    ends = done.copy()
    ends[-1] = True  # an unfinished tail ends at the last step
    env, last = np.nonzero(ends.T)  # env-major, steps ascending within an env
    first = np.ones(len(env), bool)
    first[1:] = env[1:] != env[:-1]
    start = np.zeros(len(last), np.int64)
    start[1:] = last[:-1] + 1
    start[first] = 0
    finished = done[last, env]
    if truncated is None:
        end = np.where(finished, TERMINATED, UNFINISHED)
    else:
        end = np.where(finished, np.where(np.asarray(truncated, dtype=bool)[last, env], TRUNCATED, TERMINATED), UNFINISHED)
    return Segments(env.astype(np.int64), start, (last + 1).astype(np.int64), end.astype(np.int8), first)


def running_sum(x: np.ndarray) -> np.ndarray:
    """Running sum of ``x`` along axis 0, **in place** (pass an array you own); returns ``x``.

    The same sequential float additions either way: wide rows get one contiguous row add per
    step (``np.cumsum(axis=0)`` walks each column with a stride of a whole row and measured 3-4x
    slower on ``[1000, 1024, 8]`` blocks, 15x on ``[1000, 1024]``), narrow rows ``np.cumsum``
    (a Python loop over 10^6 rows of 4 values costs a second).
    """
    if x.ndim and x.size // max(len(x), 1) >= _ROW_LOOP_MIN:
        for t in range(1, len(x)):
            x[t] += x[t - 1]
        return x
    return np.cumsum(x, axis=0, out=x)


__all__ = ["TERMINATED", "TRUNCATED", "UNFINISHED", "Segments", "running_sum", "segment"]

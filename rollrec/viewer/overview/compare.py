"""Two rollouts of the same task side by side: what must match, and per-env return differences.

`check_comparable` decides whether rollout B can be replayed against rollout A on one timeline:
the same number of envs (env k of A is compared with env k of B) and the same ``dt`` (one frame
is the same time in both) are required; a different number of steps is allowed (the timeline
covers the shorter), as are different env names or reward terms (said in `notes`).
`env_differences` turns the two overviews into one row per env. Plain Python, no viser.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rollrec.io.protocol import ReadableRollout
from rollrec.viewer.overview.episodes import TERMINATION, Overview
from rollrec.viewer.overview.table import Column, signed


class IncomparableError(ValueError):
    """Two rollouts that cannot share one timeline and env selector."""


def check_comparable(a: ReadableRollout, b: ReadableRollout) -> list[str]:
    """Raise `IncomparableError` unless ``a`` and ``b`` (`Rollout`) have the same N and dt;
    return notes for the user about what differs but is handled."""
    name_a, name_b = a.path.name, b.path.name
    if a.N != b.N:
        raise IncomparableError(
            f"cannot compare {name_a} ({a.N} envs) with {name_b} ({b.N} envs): compare mode pairs env k "
            "of one file with env k of the other, so both need the same number of envs"
        )
    if not math.isclose(a.dt, b.dt, rel_tol=1e-9, abs_tol=0.0):
        raise IncomparableError(
            f"cannot compare {name_a} (dt {a.dt:g} s) with {name_b} (dt {b.dt:g} s): one timeline needs "
            "the same time per step in both files"
        )
    notes = []
    if a.T != b.T:
        notes.append(f"{name_a} has {a.T} steps and {name_b} {b.T}: both are shown and compared over the "
                     f"first {min(a.T, b.T)}")
    if a.env_name != b.env_name:
        notes.append(f"different env names: {a.env_name} and {b.env_name}")
    if list(a.reward_term_names) != list(b.reward_term_names):
        notes.append("different reward terms: the reward plot compares the totals only")
    return notes


@dataclass(frozen=True)
class EnvDifferences:
    """One row per env: total reward over the compared steps in A and B, and their
    terminations (falls), ``[N]`` each."""

    total_a: np.ndarray
    total_b: np.ndarray
    terminations_a: np.ndarray
    terminations_b: np.ndarray

    @property
    def delta(self) -> np.ndarray:
        """``[N]`` B minus A."""
        return self.total_b - self.total_a

    def summary(self, labels: tuple[str, str] = ("A", "B")) -> str:
        """E.g. ``mean total A +41.20, B +45.02 (B−A +3.82) · B higher in 5 of 8 envs`` (``labels``: how
        the two rollouts are called)."""
        n = len(self.delta)
        a, b = labels
        return (f"mean total {a} {signed(float(self.total_a.mean()))}, {b} {signed(float(self.total_b.mean()))} "
                f"({b}−{a} {signed(float(self.delta.mean()))}) · {b} higher in {int((self.delta > 0).sum())} of {n} envs")


def env_differences(a: Overview, b: Overview) -> EnvDifferences:
    """Per-env totals and terminations of two overviews over the same number of envs and steps."""
    if a.num_envs != b.num_envs or a.num_steps != b.num_steps:
        raise ValueError(f"overviews cover {a.num_envs}x{a.num_steps} and {b.num_envs}x{b.num_steps} "
                         "(envs x steps); compute both over the same steps")

    def terminations(ov: Overview) -> np.ndarray:
        return np.bincount(ov.env[ov.ended == TERMINATION], minlength=ov.num_envs)

    return EnvDifferences(a.env_totals, b.env_totals, terminations(a), terminations(b))


def difference_columns(d: EnvDifferences, labels: tuple[str, str] = ("A", "B")) -> list[Column]:
    """Columns of the compare table: Env, A, B, B−A, A falls, B falls (``labels``: the two rollouts'
    letters)."""
    env = np.arange(len(d.delta))
    a, b = labels
    return [
        Column("Env", env, lambda i: str(i)),
        Column(a, d.total_a, lambda i: signed(float(d.total_a[i]))),
        Column(b, d.total_b, lambda i: signed(float(d.total_b[i]))),
        Column(f"{b}−{a}", d.delta, lambda i: signed(float(d.delta[i]))),
        Column(f"{a} falls", d.terminations_a, lambda i: str(int(d.terminations_a[i]))),
        Column(f"{b} falls", d.terminations_b, lambda i: str(int(d.terminations_b[i]))),
    ]

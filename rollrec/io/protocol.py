"""`ReadableRollout`: what the browser replay and the video renderer read of an opened rollout.

`rollrec.load` returns a `Rollout` for a file (format v1 or v2, or a converted file of the
original recorder) and a `ShardedRollout` for the directory of a ``torch.distributed``
recording; both satisfy this protocol, and `rollrec.viewer` and `rollrec.video` rely on nothing
else. Every member exists on every rollout: a v1 file has a `layout` (that keeps every field for
every env and step) and an episode `index` (derived from ``done``), a file without a model has
``model`` None.

Shapes: ``T`` steps (kept rows: with ``every=k`` row t is recorded step ``t * k``), ``N`` envs.
Per-step members read as ``[T, N, ...]``; fields a v2 file did not keep for an env or a step
read as fill values (NaN for floats).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from rollrec.format.images import StreamSpec
    from rollrec.io.episode_index import EpisodeIndex
    from rollrec.io.images import CameraFrames
    from rollrec.format.v2 import Layout
    from rollrec.model.robot import RobotModel


@runtime_checkable
class ReadableRollout(Protocol):
    """An opened rollout, as the viewer and the video read it (see the module docstring).

    ``isinstance(x, ReadableRollout)`` checks that every member exists, and evaluates the
    properties to do so (the episode index and the model are read): use it in tests, not on a
    hot path.
    """

    path: Path  # the file, or the directory of a sharded rollout
    meta: dict[str, Any]  # the file's decoded meta (format version, dt, env name, volume options, ...)
    T: int  # steps (kept rows)
    N: int  # envs, always the full count
    layout: Layout  # which envs and steps each per-step member holds (format v2; all of them in v1)

    @property
    def dt(self) -> float:
        """Seconds of simulated time per row."""
        ...

    @property
    def env_name(self) -> str: ...

    @property
    def reward_term_names(self) -> list[str]:
        """Names of the ``rew_terms`` columns ``[K]``; empty without reward terms."""
        ...

    @property
    def terms_are_env_means(self) -> bool:
        """True when reward terms are means over envs (files of the original recorder)."""
        ...

    @property
    def link_names(self) -> list[str] | None:
        """Names of the ``link_pos``/``link_quat`` links ``[L]``; None without link poses."""
        ...

    @property
    def has_links(self) -> bool: ...

    @property
    def model(self) -> RobotModel | None:
        """The robot's geometry stored with the rollout, or None; `RolloutFormatError` if damaged."""
        ...

    @property
    def step_keys(self) -> list[str]:
        """Names of the per-step members, each ``[T, N, ...]``."""
        ...

    @property
    def index(self) -> EpisodeIndex:
        """Every episode of every env: the file's episode index (v2), or derived from ``done`` (v1)."""
        ...

    @property
    def detail_envs(self) -> np.ndarray:
        """``[M]`` int64 envs that keep every field for some of their steps (all of them in v1)."""
        ...

    def keys(self) -> list[str]: ...

    def __contains__(self, key: object) -> bool: ...

    def __getitem__(self, key: str) -> np.ndarray:
        """Member ``key``: per-step members as ``[T, N, ...]`` (memory maps or views: index to read)."""
        ...

    def kind(self, key: str) -> str:
        """``"all"``, ``"detail"`` or ``"window"``: which envs and steps per-step member ``key`` holds."""
        ...

    def env(self, env: int, keys: list[str] | None = None) -> dict[str, np.ndarray]:
        """``{key: [T, ...]}`` of env ``env`` (negative counts from the end), read with pread."""
        ...

    def read(self, key: str, steps: tuple[int, int] | None = None,
             envs: tuple[int, int] | None = None) -> np.ndarray:
        """``[t1-t0, b-a, ...]`` of member ``key`` for steps and envs ``(start, stop)``, read with pread."""
        ...

    def episode_bounds(self, env: int) -> np.ndarray:
        """``[E, 2]`` int64 ``(start, stop)`` rows of env ``env``'s episodes, in order."""
        ...

    def has_detail(self, env: int) -> bool:
        """Whether every field of env ``env`` is in the file for at least some of its steps."""
        ...

    @property
    def cameras(self) -> dict[str, StreamSpec]:
        """``{camera: StreamSpec}`` of the recorded cameras (format v3); empty without."""
        ...

    def images(self, camera: str, env: int) -> CameraFrames:
        """Camera ``camera``'s frames of env ``env``, decoded lazily (``frames.at(step)``, ``frames.steps``)."""
        ...

    def total_rewards(self) -> np.ndarray:
        """``[N]`` float64 sum of ``rew`` over the rollout, per env."""
        ...

    def check_unchanged(self) -> None:
        """`RolloutFormatError` if the file changed on disk since it was opened."""
        ...

    def close(self) -> None: ...


__all__ = ["ReadableRollout"]

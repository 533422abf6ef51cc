"""What the replay viewer shows, as plain Python: the selected env, its data, episodes, camera.

`ReplayState` owns a `Rollout`, a `FrameClock` and the selected env's trajectory (read with
`Rollout.env`, so only that env's bytes are touched). The presentation (`scene`, `gui`) reads
from it; nothing here knows about viser, so all of it is tested without a browser.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from rollrec.io.reader import Rollout
from rollrec.viewer.clock import FrameClock

#: Camera presets, in GUI order. "follow" tracks the selected env's base while playing.
CAMERA_MODES: tuple[str, ...] = ("top", "side", "front", "follow")
#: Offset of each preset's camera from its target (the base position), metres, world frame (z up).
_CAMERA_OFFSETS: dict[str, tuple[float, float, float]] = {
    "top": (-0.01, 0.0, 4.0),  # a hair off vertical: looking straight down has no defined up
    "side": (0.0, -2.5, 0.7),
    "front": (2.5, 0.0, 0.7),
    "follow": (-2.5, -2.5, 1.5),
}
_ENV_KEYS = ("base_pos", "base_quat", "rew", "rew_terms", "done", "link_pos", "link_quat")


@dataclass(frozen=True)
class EnvData:
    """One env's trajectory, in memory. Arrays are ``[T, ...]``; quaternions wxyz.

    ``episodes`` is ``[E, 2]`` (start, stop); ``episode_of`` maps a step to its episode index;
    ``return_so_far[t]`` is the sum of ``rew`` from the episode's start up to and including t.
    """

    env: int
    base_pos: np.ndarray  # [T, 3]
    base_quat: np.ndarray  # [T, 4] wxyz
    rew: np.ndarray  # [T]
    rew_terms: np.ndarray  # [T, K]
    link_pos: np.ndarray | None  # [T, L, 3]
    link_quat: np.ndarray | None  # [T, L, 4]
    episodes: np.ndarray  # [E, 2] int64
    episode_of: np.ndarray  # [T] int64
    return_so_far: np.ndarray  # [T] float64


def read_env(rollout: Rollout, env: int) -> EnvData:
    """Read env ``env``'s trajectory (only its bytes). Raises IndexError if out of range."""
    keys = [k for k in _ENV_KEYS if k in rollout]
    d = rollout.env(env, keys)
    T = rollout.T
    done = d["done"].astype(bool)
    ends = np.flatnonzero(done) + 1
    if ends.size == 0 or ends[-1] != T:
        ends = np.append(ends, T)
    starts = np.concatenate([[0], ends[:-1]])
    episodes = np.stack([starts, ends], axis=1).astype(np.int64)
    episode_of = np.repeat(np.arange(len(episodes), dtype=np.int64), episodes[:, 1] - episodes[:, 0])
    rew = d["rew"].astype(np.float64)
    csum = np.cumsum(rew)
    before_start = np.concatenate([[0.0], csum])[episodes[episode_of, 0]]
    return EnvData(
        env=env % rollout.N,
        base_pos=d["base_pos"].astype(np.float32),
        base_quat=d["base_quat"].astype(np.float32),
        rew=rew,
        rew_terms=d["rew_terms"].astype(np.float64),
        link_pos=d.get("link_pos"),
        link_quat=d.get("link_quat"),
        episodes=episodes,
        episode_of=episode_of,
        return_so_far=csum - before_start,
    )


@dataclass(frozen=True)
class CameraPose:
    """Where a camera sits and what it looks at, world frame, metres."""

    position: tuple[float, float, float]
    look_at: tuple[float, float, float]


def camera_pose(mode: str, target: np.ndarray) -> CameraPose:
    """The pose of camera preset ``mode`` (one of `CAMERA_MODES`) aimed at ``target`` ``[3]``."""
    if mode not in _CAMERA_OFFSETS:
        raise ValueError(f"unknown camera mode {mode!r}; choose one of {', '.join(CAMERA_MODES)}")
    t = np.asarray(target, dtype=np.float64).reshape(3)
    pos = t + np.asarray(_CAMERA_OFFSETS[mode])
    return CameraPose(tuple(float(x) for x in pos), tuple(float(x) for x in t))


class ReplayState:
    """The viewer's model: clock, selected env and its data, camera mode.

    Callers read `data` after `select_env`. All methods are cheap except `select_env` (reads
    one env) and `best_env` / `worst_env` (read ``rew`` ``[T, N]`` whole, once).
    """

    def __init__(self, rollout: Rollout, *, env: int = 0, now: Callable[[], float] = time.monotonic):
        self.rollout = rollout
        self.clock = FrameClock(rollout.T, rollout.dt, now=now)
        self.camera_mode = "side"
        self._totals: np.ndarray | None = None
        self.data = read_env(rollout, env)

    # ---- env selection ---------------------------------------------------------------------
    @property
    def env(self) -> int:
        return self.data.env

    @property
    def num_envs(self) -> int:
        return self.rollout.N

    def select_env(self, env: int) -> int:
        """Show env ``env`` (IndexError if out of range); the frame is kept. Returns the env."""
        if not 0 <= env < self.rollout.N:
            raise IndexError(f"env {env} out of range: this rollout has {self.rollout.N} envs (0..{self.rollout.N - 1})")
        if env != self.data.env:
            self.data = read_env(self.rollout, env)
        return self.data.env

    def next_env(self, delta: int = 1) -> int:
        """Select the env ``delta`` away from the current one, wrapping around."""
        return self.select_env((self.env + delta) % self.rollout.N)

    def env_totals(self) -> np.ndarray:
        """``[N]`` total reward of each env over the whole rollout (computed once)."""
        if self._totals is None:
            self._totals = self.rollout.total_rewards()
        return self._totals

    def best_env(self) -> int:
        """The env with the highest total reward (lowest index on ties; NaN totals, e.g. the
        envs of a missing shard, never win)."""
        return int(np.nanargmax(self.env_totals()))

    def worst_env(self) -> int:
        """The env with the lowest total reward (lowest index on ties; NaN totals never lose)."""
        return int(np.nanargmin(self.env_totals()))

    # ---- episodes --------------------------------------------------------------------------
    @property
    def frame(self) -> int:
        return self.clock.frame

    def episode_index(self, frame: int | None = None) -> int:
        """Index of the episode (of the selected env) that contains ``frame`` (default: current)."""
        return int(self.data.episode_of[self.frame if frame is None else frame])

    def jump_episode(self, delta: int) -> int:
        """Seek to the start of the episode ``delta`` away (+1 next, -1 previous); returns the frame.

        ``-1`` goes to the start of the current episode first when past its first step, like a
        media player's "previous track". Clamped to the first and last episode.
        """
        e = self.episode_index()
        start = int(self.data.episodes[e, 0])
        if delta < 0 and self.frame > start:
            delta += 1
        target = min(max(e + delta, 0), len(self.data.episodes) - 1)
        return self.clock.seek(int(self.data.episodes[target, 0]))

    def episode_status(self) -> str:
        """One line: episode number, step in episode, return so far, e.g.
        ``Episode 2 / 5 · step 13 / 40 · return 4.21``."""
        t = self.frame
        e = self.episode_index(t)
        start, stop = (int(x) for x in self.data.episodes[e])
        return (
            f"Episode {e + 1} / {len(self.data.episodes)} · step {t - start + 1} / {stop - start}"
            f" · return {self.data.return_so_far[t]:.2f}"
        )

    def frame_status(self) -> str:
        """``Frame t / T-1 · env k / N-1`` for the current frame."""
        return f"Frame {self.frame} / {self.rollout.T - 1} · env {self.env} / {self.rollout.N - 1}"

    def reward_readout(self) -> list[tuple[str, float]]:
        """``(name, value)`` of every reward term at the current frame, then ``("total", rew)``."""
        t = self.frame
        names = self.rollout.reward_term_names
        rows = [(n, float(v)) for n, v in zip(names, self.data.rew_terms[t])]
        rows.append(("total", float(self.data.rew[t])))
        return rows

    # ---- camera ----------------------------------------------------------------------------
    def set_camera_mode(self, mode: str) -> CameraPose:
        """Choose a preset (`CAMERA_MODES`); returns its pose aimed at the base's current position."""
        pose = camera_pose(mode, self.base_position())
        self.camera_mode = mode
        return pose

    def base_position(self, frame: int | None = None) -> np.ndarray:
        """``[3]`` the selected env's base position at ``frame`` (default: current)."""
        return self.data.base_pos[self.frame if frame is None else frame]

    def follow_pose(self) -> CameraPose | None:
        """The camera pose to push for the current frame in follow mode, else None."""
        if self.camera_mode != "follow":
            return None
        return camera_pose("follow", self.base_position())

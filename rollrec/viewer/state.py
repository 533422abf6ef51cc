"""What the replay viewer shows, as plain Python: the selected env, its data, episodes, camera.

`ReplayState` owns a `Rollout` (and, in compare mode, a second one), a `FrameClock` and the
selected env's trajectory in each (read with `Rollout.env`, so only that env's bytes are
touched). The presentation (`scene`, `gui`, ...) reads from it; nothing here knows about viser,
so all of it is tested without a browser.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from rollrec.io.protocol import ReadableRollout
from rollrec.viewer.camera import CAMERA_MODES, CameraPose, camera_pose
from rollrec.viewer.clock import FrameClock
from rollrec.viewer.overview.compare import check_comparable
from rollrec.viewer.overview.episodes import Overview, compute_env_totals

__all__ = ["CAMERA_MODES", "LAYOUTS", "CameraPose", "EnvData", "ReplayState", "camera_pose", "read_env", "robot_reach",
           "run_letters"]

_ENV_KEYS = ("base_pos", "base_quat", "rew", "rew_terms", "link_pos", "link_quat", "policy_acted")
#: The per-step bool field a session served with live policy control records: whether the
#: policy chose the env's action at that step (`rollrec.loop.control`).
POLICY_FIELD = "policy_acted"
#: Longest stretch of steps the plots show (around the current frame, within its episode).
PLOT_WINDOW = 400
#: How the two robots of compare mode are placed: B beside A (offset along -y) or on top of A.
LAYOUTS: tuple[str, ...] = ("side by side", "overlaid")
SIDE_BY_SIDE_SPACING = 1.5  # metres between A and B in "side by side" when the robot's size is unknown
SIDE_BY_SIDE_GAP = 0.3  # metres between the two robots' farthest reaches


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
    detail: np.ndarray | None = None  # [T] bool: every field kept at that step (format v2; None: everywhere)
    policy: np.ndarray | None = None  # [T] bool: the policy acted at that step (None: not recorded)


def read_env(rollout: ReadableRollout, env: int, steps: int | None = None) -> EnvData:
    """Read env ``env``'s trajectory (only its bytes), its first ``steps`` steps (default all).
    Negative ``env`` counts from the end. Raises IndexError if out of range.

    In a format-v2 file, the fields not kept for this env (or at these steps) read as NaN (the
    scene hides what they would pose) and episodes come from the file's episode index."""
    indexed = rollout.layout.has_index
    keys = [k for k in (*_ENV_KEYS, *(() if indexed else ("done",))) if k in rollout]
    d = rollout.env(env, keys)  # one read of this env's bytes
    T = rollout.T if steps is None else min(int(steps), rollout.T)
    d = {k: v[:T] for k, v in d.items()}
    if indexed:
        episodes = np.asarray(rollout.episode_bounds(env), dtype=np.int64)
        episodes = episodes[episodes[:, 0] < T]
        episodes[:, 1] = np.minimum(episodes[:, 1], T)
    else:
        ends = np.flatnonzero(d["done"].astype(bool)) + 1
        if ends.size == 0 or ends[-1] != T:
            ends = np.append(ends, T)
        episodes = np.stack([np.concatenate([[0], ends[:-1]]), ends], axis=1).astype(np.int64)
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
        detail=_detail_steps(rollout, env, T),
        policy=None if POLICY_FIELD not in d else np.asarray(d[POLICY_FIELD], bool),
    )


def _detail_steps(rollout: ReadableRollout, env: int, T: int) -> np.ndarray | None:
    """``[T]`` bool: the steps at which every field of ``env`` is in the file; None in a file that
    keeps everything."""
    layout = rollout.layout
    if not (layout.env_ids or layout.window_members):
        return None
    out = np.zeros(T, bool)
    if layout.env_ids:
        out[:] = rollout.has_detail(env)
        return out
    for first, n, _ in rollout.index.windows_by_env().get(env % rollout.N, ()):
        out[first : first + n] = True
    return out


def run_letters(n: int) -> tuple[str, ...]:
    """How the replay calls ``n`` rollouts: ``A``, ``B``, ``C``, ... (``A26``... past Z)."""
    return tuple(chr(ord("A") + i) if i < 26 else f"A{i}" for i in range(n))


class ReplayState:
    """The viewer's model: clock, selected env and its data, camera mode; in compare mode the
    same env of a second rollout ``other`` (`data_b`), on the same clock.

    Compare mode may hold more rollouts (``others``: ``runs`` is every rollout, the first one
    first); `set_pair` picks the two shown side by side (`pair`: indices into ``runs``; `rollout`
    and `other` are those two). The timeline is the shortest rollout's.

    Callers read `data` after `select_env`. All methods are cheap except `select_env` (reads one
    env of each rollout) and `best_env` / `worst_env` before `overview` is set (read ``rew``
    block by block, once). Raises `IncomparableError` when ``other`` cannot share the timeline.
    """

    def __init__(self, rollout: ReadableRollout, *, env: int = 0, other: ReadableRollout | None = None,
                 others: Sequence[ReadableRollout] = (), now: Callable[[], float] = time.monotonic):
        self.runs: list[ReadableRollout] = [rollout, *([other] if other is not None else []), *others]
        self.rollout = rollout
        self.other = self.runs[1] if len(self.runs) > 1 else None
        self.pair = (0, 1) if len(self.runs) > 1 else (0, 0)
        self.notes = [note for r in self.runs[1:] for note in check_comparable(rollout, r)]
        self.num_frames = min(r.T for r in self.runs)
        self.clock = FrameClock(self.num_frames, rollout.dt, now=now)
        self.camera_mode = "follow"
        self.layout = LAYOUTS[0]
        self.spacing = SIDE_BY_SIDE_SPACING
        self.overview: Overview | None = None  # set by the app once computed (of runs[0])
        self._totals: dict[int, np.ndarray] = {}
        env = self._check_env(env)
        self.data = read_env(rollout, env, self.num_frames)
        self.data_b = read_env(self.other, env, self.num_frames) if self.other is not None else None

    @property
    def labels(self) -> tuple[str, str]:
        """The letters of the two rollouts shown (``("A", "B")`` unless `set_pair` chose others)."""
        letters = run_letters(len(self.runs))
        return letters[self.pair[0]], letters[self.pair[1]]

    def set_pair(self, left: int, right: int) -> tuple[int, int]:
        """Show ``runs[left]`` (where A stands) against ``runs[right]`` (where B stands), at the same env
        and frame; returns the pair. ValueError for indices out of range or equal."""
        n = len(self.runs)
        if not (0 <= left < n and 0 <= right < n) or left == right:
            raise ValueError(f"pick two different rollouts of {n} (0..{n - 1}), got {left} and {right}")
        env = self.env
        data, data_b = read_env(self.runs[left], env, self.num_frames), read_env(self.runs[right], env, self.num_frames)
        self.pair = (int(left), int(right))
        self.rollout, self.other = self.runs[left], self.runs[right]
        self.data, self.data_b = data, data_b
        return self.pair

    def grow(self, num_frames: int, data: EnvData) -> None:
        """A recording in progress committed more steps: ``num_frames`` of them, ``data`` the
        selected env's trajectory over all of them (`rollrec.viewer.live.growth`)."""
        self.num_frames = int(num_frames)
        self.clock.extend(num_frames)
        self.data = data
        self._totals = None

    # ---- env selection ---------------------------------------------------------------------
    @property
    def env(self) -> int:
        return self.data.env

    @property
    def num_envs(self) -> int:
        return self.rollout.N

    @property
    def comparing(self) -> bool:
        return self.other is not None

    def _check_env(self, env: int) -> int:
        n = self.rollout.N
        if not -n <= env < n:
            raise IndexError(f"env {env} out of range: this rollout has {n} envs (0..{n - 1}, or -{n}..-1 from the end)")
        return int(env) % n

    def select_env(self, env: int) -> int:
        """Show env ``env`` (negative counts from the end; IndexError if out of range); the frame
        is kept. Returns the env."""
        env = self._check_env(env)
        if env != self.data.env:
            self.data = read_env(self.rollout, env, self.num_frames)
            if self.other is not None:
                self.data_b = read_env(self.other, env, self.num_frames)
        return self.data.env

    def next_env(self, delta: int = 1) -> int:
        """Select the env ``delta`` away from the current one, wrapping around."""
        return self.select_env((self.env + delta) % self.rollout.N)

    def next_detail_env(self) -> int:
        """The next env (after the selected one, wrapping) that holds every field at some step;
        the selected env when none does (a file that keeps everything: the next env)."""
        envs = np.asarray(self.rollout.detail_envs, dtype=np.int64)
        if envs.size == 0:
            return self.env
        after = envs[envs > self.env]
        return int(after[0] if after.size else envs[0])

    def env_totals(self) -> np.ndarray:
        """``[N]`` total reward of each env of the rollout shown first over the timeline (from the
        overview when computed)."""
        if self.overview is not None and self.pair[0] == 0:
            return self.overview.env_totals
        i = self.pair[0]
        if i not in self._totals:
            self._totals[i] = compute_env_totals(self.rollout, steps=self.num_frames)
        return self._totals[i]

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
        ``Episode 2 / 5 · step 12 / 39 · return 4.21`` (compare mode: ``return A 4.21 · B 3.90``).
        The step counts from 0 to the episode's last step, as `frame_status` counts frames."""
        t = self.frame
        e = self.episode_index(t)
        start, stop = (int(x) for x in self.data.episodes[e])
        line = f"Episode {e + 1} / {len(self.data.episodes)} · step {t - start} / {stop - start - 1}"
        if self.data_b is None:
            return line + f" · return {self.data.return_so_far[t]:.2f}"
        a, b = self.labels
        return line + f" · return {a} {self.data.return_so_far[t]:.2f} · {b} {self.data_b.return_so_far[t]:.2f}"

    def frame_status(self) -> str:
        """``Frame t / T-1 · env k / N-1`` for the current frame."""
        return f"Frame {self.frame} / {self.num_frames - 1} · env {self.env} / {self.rollout.N - 1}"

    def detail_summary(self) -> str:
        """One line on what a format-v2 file keeps (empty for a file that keeps everything), e.g.
        ``every field for 2 envs (3, 10), light fields for the others``."""
        r = self.rollout
        layout = r.layout
        if not layout.has_index:
            return ""
        parts = []
        if layout.env_ids:
            envs = r.detail_envs
            shown = ", ".join(map(str, envs[:8])) + (", ..." if len(envs) > 8 else "")
            parts.append(f"every field for {len(envs)} of {r.N} envs ({shown}), light fields for the others")
        if layout.window_members:
            captured = int(((r.index.captured > 0) & (r.index.rows > 0)).sum())
            how = r.meta.get("windows", {}).get("capture", "chosen")
            parts.append(f"every field for the last {layout.window} steps of {captured} of {len(r.index)} "
                         f"episodes (capture: {how}), light fields elsewhere")
        if layout.every > 1:
            parts.append(f"1 step in {layout.every} kept")
        return "; ".join(parts)

    def detail_status(self) -> str:
        """What the file holds for the selected env at the current frame: empty for a file that keeps
        everything; else e.g. ``detail env: every field`` or ``light fields only (rew, done, ...)``,
        or, with captured episodes, ``every field (captured episode, frames 120-169)``."""
        detail = self.data.detail
        if detail is None:
            return ""
        r = self.rollout
        light = ", ".join(k for k in r.step_keys if r.kind(k) == "all") or "none"
        if r.layout.env_ids:
            return "◆ detail env: every field" if detail.any() else f"light fields only ({light}): not a detail env"
        runs = np.flatnonzero(np.diff(np.r_[0, detail.astype(np.int8), 0]))
        spans = [(int(a), int(b) - 1) for a, b in zip(runs[0::2], runs[1::2])]
        here = next((s for s in spans if s[0] <= self.frame <= s[1]), None)
        if here is not None:
            return f"◆ every field (captured episode, frames {here[0]}-{here[1]})"
        if not spans:
            return f"light fields only ({light}): no episode of this env was captured"
        where = ", ".join(f"{a}-{b}" for a, b in spans[:4]) + (" ..." if len(spans) > 4 else "")
        return f"light fields here ({light}); every field at frames {where}"

    def reward_readout(self) -> list[tuple[str, float]]:
        """``(name, value)`` of every reward term at the current frame, then ``("total", rew)``."""
        t = self.frame
        names = self.rollout.reward_term_names
        rows = [(n, float(v)) for n, v in zip(names, self.data.rew_terms[t])]
        rows.append(("total", float(self.data.rew[t])))
        return rows

    def reward_readout_b(self) -> list[tuple[str, float]]:
        """Like `reward_readout`, for rollout B (compare mode; empty otherwise)."""
        if self.data_b is None or self.other is None:
            return []
        t = self.frame
        rows = [(n, float(v)) for n, v in zip(self.other.reward_term_names, self.data_b.rew_terms[t])]
        rows.append(("total", float(self.data_b.rew[t])))
        return rows

    def plot_window(self, frame: int | None = None) -> tuple[int, int]:
        """``(lo, hi)`` steps the plots show for ``frame`` (default: current): its episode, or
        `PLOT_WINDOW` steps of it around the frame when longer; at least two steps."""
        t = self.frame if frame is None else frame
        e = self.episode_index(t)
        lo, hi = (int(x) for x in self.data.episodes[e])
        if hi - lo > PLOT_WINDOW:
            lo = min(max(t - PLOT_WINDOW // 2, lo), hi - PLOT_WINDOW)
            hi = lo + PLOT_WINDOW
        if hi - lo < 2:  # uPlot needs two points to draw a line
            lo, hi = (lo, lo + 2) if lo + 2 <= self.num_frames else (max(0, hi - 2), hi)
        return lo, hi

    # ---- compare layout --------------------------------------------------------------------
    def set_layout(self, layout: str) -> None:
        """Place robot B beside A or on top of it (`LAYOUTS`)."""
        if layout not in LAYOUTS:
            raise ValueError(f"unknown layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
        self.layout = layout

    @property
    def offset_b(self) -> np.ndarray:
        """``[3]`` float32 shift applied to robot B in the scene: `spacing` along -y side by side."""
        dy = -self.spacing if self.layout == "side by side" else 0.0
        return np.array([0.0, dy, 0.0], np.float32)

    def fit_spacing(self, part_reach: float = 0.0) -> float:
        """Space the two robots by their size: twice the farthest horizontal reach from the base of
        any link of the shown env, in either rollout, over every step, plus ``part_reach`` (how far
        the robot's geometry extends past its link frames: `rollrec.viewer.bodies.part_reach`), plus
        `SIDE_BY_SIDE_GAP`. Without link poses, `SIDE_BY_SIDE_SPACING`. Returns the spacing."""
        reaches = [robot_reach(d) for d in (self.data, self.data_b) if d is not None]
        reach = max((r for r in reaches if r is not None), default=None)
        if reach is None:
            self.spacing = max(SIDE_BY_SIDE_SPACING, 2 * part_reach + SIDE_BY_SIDE_GAP)
        else:
            self.spacing = 2 * (reach + part_reach) + SIDE_BY_SIDE_GAP
        return self.spacing

    # ---- camera ----------------------------------------------------------------------------
    def set_camera_mode(self, mode: str) -> CameraPose:
        """Choose a preset (`CAMERA_MODES`); returns its pose aimed at the current target."""
        pose = camera_pose(mode, self.camera_target(), distance_scale=self.camera_scale)
        self.camera_mode = mode
        return pose

    @property
    def camera_scale(self) -> float:
        """Presets sit further out when two robots stand side by side."""
        return 1.3 if self.comparing and self.layout == "side by side" else 1.0

    def base_position(self, frame: int | None = None) -> np.ndarray:
        """``[3]`` the selected env's base position at ``frame`` (default: current)."""
        return self.data.base_pos[self.frame if frame is None else frame]

    def camera_target(self, frame: int | None = None) -> np.ndarray:
        """``[3]`` what the camera looks at: the base, or midway between A's and B's bases (as
        placed in the scene) in compare mode. A missing (NaN) pose keeps the last known one."""
        t = self.frame if frame is None else frame
        target = _last_finite(self.data.base_pos, t)
        if self.data_b is not None:
            b = _last_finite(self.data_b.base_pos, t) + self.offset_b
            target = (target + b) / 2
        return target.astype(np.float64)

    def follow_pose(self) -> CameraPose | None:
        """The follow preset's pose for the current frame in follow mode, else None (the app
        keeps each viewer's own offset; this is the pose for a viewer that has none yet)."""
        if self.camera_mode != "follow":
            return None
        return camera_pose("follow", self.camera_target(), distance_scale=self.camera_scale)


def robot_reach(data: EnvData) -> float | None:
    """The farthest horizontal distance of any link from the base over the trajectory (metres), or
    None without link poses (or with none recorded)."""
    if data.link_pos is None:
        return None
    rel = np.asarray(data.link_pos, np.float64)[..., :2] - np.asarray(data.base_pos, np.float64)[:, None, :2]
    dist = np.hypot(rel[..., 0], rel[..., 1])
    dist = dist[np.isfinite(dist)]
    return float(dist.max()) if dist.size else None


def _last_finite(pos: np.ndarray, t: int) -> np.ndarray:
    """``pos[t]`` or, if it holds NaN, the last finite position before it (zeros if none)."""
    p = np.asarray(pos[t], dtype=np.float64)
    if np.all(np.isfinite(p)):
        return p
    ok = np.flatnonzero(np.all(np.isfinite(pos[:t]), axis=1))
    return np.asarray(pos[ok[-1]], dtype=np.float64) if ok.size else np.zeros(3)

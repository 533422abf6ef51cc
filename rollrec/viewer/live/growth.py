"""The selected env's trajectory, extended over the steps a recording in progress committed since.

`extend_env` reads only the new rows of the env (one pread per member and row range, as the
reader's `read` does) and appends them to its `EnvData`; its episodes go on from where they
stood: the last one continues unless the step before the new rows ended it. Plain numpy, no
viser: tested against `read_env` of the same steps.
"""

from __future__ import annotations

import numpy as np

from rollrec.io.protocol import ReadableRollout
from rollrec.viewer.state import _ENV_KEYS, POLICY_FIELD, EnvData, _detail_steps, read_env


def extend_env(rollout: ReadableRollout, data: EnvData, steps: int) -> EnvData:
    """``data`` (env ``data.env`` of ``rollout`` over its first T0 steps) over its first ``steps``
    steps, reading steps T0..steps only. ``data`` unchanged when ``steps <= T0``."""
    T0, T1 = len(data.rew), int(steps)
    if T1 <= T0:
        return data
    if T0 == 0:
        return read_env(rollout, data.env, T1)
    env = data.env
    indexed = rollout.layout.has_index
    keys = [k for k in _ENV_KEYS if k in rollout]
    new = {k: rollout.read(k, (T0, T1), (env, env + 1))[:, 0] for k in keys}

    def joined(old: np.ndarray | None, key: str, dtype) -> np.ndarray | None:
        if old is None or key not in new:
            return old
        return np.concatenate([old, np.asarray(new[key], dtype)])

    if indexed:
        episodes = np.asarray(rollout.episode_bounds(env), dtype=np.int64)
        episodes = episodes[episodes[:, 0] < T1]
        episodes[:, 1] = np.minimum(episodes[:, 1], T1)
    else:
        done = np.asarray(rollout.read("done", (T0 - 1, T1), (env, env + 1))[:, 0], bool)  # the step before, too
        episodes = _continued(data.episodes, done, T0, T1)
    rew = np.concatenate([data.rew, np.asarray(new["rew"], np.float64)])
    episode_of = np.repeat(np.arange(len(episodes), dtype=np.int64), episodes[:, 1] - episodes[:, 0])
    csum = np.cumsum(rew)
    before_start = np.concatenate([[0.0], csum])[episodes[episode_of, 0]]
    return EnvData(
        env=env,
        base_pos=joined(data.base_pos, "base_pos", np.float32),
        base_quat=joined(data.base_quat, "base_quat", np.float32),
        rew=rew,
        rew_terms=joined(data.rew_terms, "rew_terms", np.float64),
        link_pos=joined(data.link_pos, "link_pos", data.link_pos.dtype if data.link_pos is not None else None),
        link_quat=joined(data.link_quat, "link_quat", data.link_quat.dtype if data.link_quat is not None else None),
        episodes=episodes,
        episode_of=episode_of,
        return_so_far=csum - before_start,
        detail=_detail_steps(rollout, env, T1),
        policy=joined(data.policy, POLICY_FIELD, bool),
    )


def _continued(episodes: np.ndarray, done: np.ndarray, T0: int, T1: int) -> np.ndarray:
    """``episodes`` (``[E, 2]`` over steps ``0..T0``) over ``0..T1``, from ``done`` of steps
    ``T0-1 .. T1-1``: an episode ends after a step whose ``done`` is set."""
    out = [tuple(e) for e in episodes.tolist()]
    start = T0 if done[0] else out.pop()[0]  # the last episode ended at T0, or goes on
    for end in (np.flatnonzero(done[1:]) + T0 + 1).tolist():
        out.append((start, end))
        start = end
    if start < T1:
        out.append((start, T1))
    return np.asarray(out, dtype=np.int64).reshape(-1, 2)


__all__ = ["extend_env"]

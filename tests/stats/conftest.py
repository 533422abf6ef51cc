"""Fixtures of the statistics tests: two runs of the built-in walker, a policy and a perturbed one."""

from __future__ import annotations

from pathlib import Path

import pytest

from rollrec.envs import GaitPolicy, WalkerEnv
from rollrec.loop.rollout import RolloutRecorder

ENVS, STEPS, EPISODE = 48, 160, 45


def record(path: Path, *, seed: int = 0, amplitude: float = 0.8, num_envs: int = ENVS) -> Path:
    """``WalkerEnv(num_envs, seed)`` under ``GaitPolicy(amplitude)`` for `STEPS` steps, episodes of at
    most `EPISODE` steps (staggered), recorded by `RolloutRecorder` into ``path``."""
    env = WalkerEnv(num_envs, seed=seed, max_episode_steps=EPISODE)
    return RolloutRecorder(env, max_steps=STEPS, progress=False).run(GaitPolicy(amplitude=amplitude), path.parent,
                                                                     filename=path.name)


@pytest.fixture(scope="session")
def walker_runs(tmp_path_factory) -> dict[str, Path]:
    """``{"policy", "perturbed", "other_seed", "fewer_envs"}``: the policy, a perturbed policy (smaller
    stride) on the same seeds, the policy on other seeds, and on fewer envs (shared: do not modify)."""
    d = tmp_path_factory.mktemp("walker_runs")
    return {
        "policy": record(d / "policy.npz"),
        "perturbed": record(d / "perturbed.npz", amplitude=0.55),
        "other_seed": record(d / "other_seed.npz", seed=1),
        "fewer_envs": record(d / "fewer_envs.npz", num_envs=ENVS // 2),
    }


def rerecord(src: Path, dst: Path, **volume) -> Path:
    """The v1 rollout ``src`` recorded again step by step through `Recorder` with ``volume`` options
    (``envs=``, ``every=``, ...): a format-v2 file (with an episode index) of the same values."""
    import numpy as np

    import rollrec
    from rollrec.engine import Recorder

    with rollrec.load(src) as r:
        names = r.reward_term_names
        with Recorder(dst, r.N, max_steps=r.T, dt=r.dt, env_name=r.env_name, link_names=r.link_names,
                      meta={"seed": r.meta["seed"]}, flush_interval_s=None, **volume) as rec:
            for t in range(r.T):
                rec.record(obs=np.array(r["obs"][t]), act=np.array(r["act"][t]), rew=np.array(r["rew"][t]),
                           done=np.array(r["done"][t]), truncated=np.array(r["truncated"][t]),
                           base_pos=np.array(r["base_pos"][t]), base_quat=np.array(r["base_quat"][t]),
                           reward_terms={n: np.array(r["rew_terms"][t, :, i]) for i, n in enumerate(names)},
                           link_pos=np.array(r["link_pos"][t]), link_quat=np.array(r["link_quat"][t]))
    return Path(dst)

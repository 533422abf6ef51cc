"""Fixtures of the statistics tests (``walker_runs``, the recorded walker runs they compare, is in
``tests/conftest.py``: the command line and the viewer tests use it too)."""

from __future__ import annotations

from pathlib import Path


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

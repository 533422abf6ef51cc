"""Where does the policy fail? Every episode of every env, without the browser.

Run ``python examples/03_triage_overview.py [ROLLOUT.npz]`` (records 256 walkers for 300 steps
into a temporary folder, removed at the end, when no file is given). Prints the episodes that ended in a fall with the lowest returns, and
the reward term that hurt each most: the table of the viewer's Overview tab, as numpy arrays.
"""

from __future__ import annotations

import sys
import tempfile

import numpy as np

import rollrec
from rollrec.viewer import compute_overview
from rollrec.viewer.overview import TERMINATION


def main(path: str | None = None, *, worst: int = 5, num_envs: int = 256,
         steps: int = 300) -> list[tuple[int, int, float, str]]:
    """Without ``path``, records ``num_envs`` walkers for ``steps`` first. Returns ``(env, first step, return, worst term)`` of the ``worst`` lowest-return falls."""
    if path is None:
        from rollrec.envs import GaitPolicy, WalkerEnv
        from rollrec.loop.rollout import RolloutRecorder

        with tempfile.TemporaryDirectory(prefix="rollrec_") as tmp:
            recorded = RolloutRecorder(WalkerEnv(num_envs, seed=0), max_steps=steps, progress=False).run(GaitPolicy(), tmp)
            return _worst_falls(recorded, worst, replay_hint=False)
    return _worst_falls(path, worst, replay_hint=True)


def _worst_falls(path, worst: int, *, replay_hint: bool) -> list[tuple[int, int, float, str]]:
    with rollrec.load(path) as r:
        ov = compute_overview(r)
    print(f"{ov.num_envs} envs, {len(ov)} episodes: {ov.counts()}")
    falls = np.flatnonzero(ov.ended == TERMINATION)
    rows = []
    for i in falls[np.argsort(ov.ret[falls])][:worst]:
        term = ov.term_names[ov.worst_term[i]] if ov.worst_term[i] >= 0 else "none"
        rows.append((int(ov.env[i]), int(ov.start[i]), float(ov.ret[i]), term))
        print(f"  env {ov.env[i]:4d}  steps {ov.start[i]:4d}-{ov.stop[i]:4d}  return {ov.ret[i]:+8.2f}  "
              f"worst term {term} ({ov.worst_value[i]:+.2f})")
    if replay_hint:  # a recording of our own is gone by now
        print(f"replay one: rollrec replay {path} --env {rows[0][0] if rows else 0}")
    return rows


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)

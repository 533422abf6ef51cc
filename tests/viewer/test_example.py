"""The viewer example runs: it records, serves on a free port, plays, and stops."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

import rollrec
from rollrec.viewer import stop_app

from .conftest import wait_for

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "02_replay_viewer.py"


@pytest.mark.slow
def test_replay_viewer_example(tmp_path):
    spec = importlib.util.spec_from_file_location("replay_viewer_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    app = module.main(str(tmp_path), port=0, block=False)
    try:
        assert app.state.env == app.state.best_env()
        assert app.state.camera_mode == "follow"
        wait_for(lambda: app.state.frame > 0, what="playback to advance")  # playing in real time
    finally:
        stop_app(app)


def test_triage_example_lists_the_worst_falls(walker_file, capsys):
    spec = importlib.util.spec_from_file_location("triage_example", EXAMPLE.parent / "03_triage_overview.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rows = module.main(str(walker_file), worst=3)
    with rollrec.load(walker_file) as r:
        done, trunc, rew = (np.asarray(r[k]) for k in ("done", "truncated", "rew"))
    returns = []
    for k in range(done.shape[1]):
        start = 0
        for t in np.flatnonzero(done[:, k]):
            if not trunc[t, k]:
                returns.append((float(rew[start : t + 1, k].astype(np.float64).sum()), k, start))
            start = t + 1
    expected = sorted(returns)[:3]
    assert [(env, start) for env, start, _, _ in rows] == [(k, s) for _, k, s in expected]
    assert "replay one: rollrec replay" in capsys.readouterr().out

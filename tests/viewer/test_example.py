"""The viewer example runs: it records, serves on a free port, plays, and stops."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

from rollrec.viewer import stop_app

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "03_replay_viewer.py"


def test_replay_viewer_example(tmp_path):
    spec = importlib.util.spec_from_file_location("replay_viewer_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    app = module.main(str(tmp_path), port=0, block=False)
    try:
        assert app.state.env == app.state.best_env()
        assert app.state.camera_mode == "follow"
        time.sleep(0.3)
        assert app.state.frame > 0  # playing in real time
    finally:
        stop_app(app)

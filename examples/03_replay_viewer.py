"""Replay a rollout in the browser: record 64 walkers for 300 steps, then serve the replay.

Run ``python examples/03_replay_viewer.py`` and open the printed URL (Ctrl-C to stop).
Same as ``rollrec replay FILE`` on a file you already have.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from rollrec.loop.rollout import RolloutRecorder
from rollrec.envs import GaitPolicy, WalkerEnv
from rollrec.viewer import ReplayApp, serve


def main(out_dir: str | None = None, *, port: int = 8080, block: bool = True) -> ReplayApp:
    """Record the walker into ``out_dir`` (a temporary folder by default) and serve its replay.

    With ``block=False`` returns the running app (stop it with `rollrec.viewer.stop_app`).
    """
    out = Path(out_dir or tempfile.mkdtemp(prefix="rollrec_"))
    path = RolloutRecorder(WalkerEnv(64, seed=0), max_steps=300, progress=False).run(GaitPolicy(), out)
    app = serve(path, port=port, block=block)
    if block:
        return app
    app.best_env()  # start on the env with the highest return
    app.set_camera("follow")
    app.play()
    return app


if __name__ == "__main__":
    main()

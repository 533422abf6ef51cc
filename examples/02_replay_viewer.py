"""Replay a rollout in the browser: record 64 walkers for 300 steps, then serve the replay.

Run ``python examples/02_replay_viewer.py [--port 8080] [--out DIR] [--num-envs 64] [--steps 300]`` and open the printed URL
(Ctrl-C to stop). Without ``--out`` the rollout goes to a temporary folder that is removed when
the server stops. Same as ``rollrec replay FILE`` on a file you already have.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from rollrec.envs import GaitPolicy, WalkerEnv
from rollrec.loop.rollout import RolloutRecorder
from rollrec.viewer import ReplayApp, serve


def main(out_dir: str | None = None, *, port: int = 8080, block: bool = True, num_envs: int = 64,
         steps: int = 300) -> ReplayApp:
    """Record ``num_envs`` walkers for ``steps`` into ``out_dir`` and serve its replay on ``port`` (0: any free port).

    With ``block=True`` serves until Ctrl-C; without ``out_dir`` the file lives in a temporary
    folder removed when the server stops. With ``block=False`` returns the running app (stop it
    with `rollrec.viewer.stop_app`); then ``out_dir`` is needed, since the file outlives this call.
    """
    if out_dir is None:
        if not block:
            raise ValueError("block=False serves after main returns: pass out_dir to keep the file that long")
        with tempfile.TemporaryDirectory(prefix="rollrec_") as tmp:
            return main(tmp, port=port, block=True, num_envs=num_envs, steps=steps)
    path = RolloutRecorder(WalkerEnv(num_envs, seed=0), max_steps=steps, progress=False).run(GaitPolicy(), Path(out_dir))
    app = serve(path, port=port, block=block)
    if block:
        return app
    app.best_env()  # start on the env with the highest return
    app.set_camera("follow")
    app.play()
    return app


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Record 64 walkers and replay them in the browser.")
    parser.add_argument("--port", type=int, default=8080, help="port to serve on (default 8080; 0: any free port)")
    parser.add_argument("--out", default=None, help="folder to keep the rollout in (default: a temporary one)")
    parser.add_argument("--num-envs", type=int, default=64, help="walkers to record (default 64)")
    parser.add_argument("--steps", type=int, default=300, help="steps to record (default 300)")
    args = parser.parse_args()
    try:
        main(args.out, port=args.port, num_envs=args.num_envs, steps=args.steps)
    except (OSError, ValueError) as exc:  # a busy port, a bad folder: one line, no traceback
        sys.exit(f"{parser.prog}: error: {exc}")

"""The replay reports a rollout file changed on disk instead of dying or mixing two files."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import viser

import rollrec
from rollrec.viewer import ReplayApp

REPO = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent("""
    import os, sys
    import viser, rollrec
    from rollrec.viewer import ReplayApp
    path = sys.argv[1]
    server = viser.ViserServer(host="127.0.0.1", port=0, verbose=False)
    rollout = rollrec.load(path)
    app = ReplayApp(rollout, server)
    for key in rollout.step_keys:
        rollout[key][:1].tobytes()          # every member mapped, as a long session would have
    os.truncate(path, 4096)
    app.select_env(3)
    app.next_env(1)
    app.best_env()
    print("env", app.state.env)
    print("error", app.file_error)
    server.stop()
""")


def test_truncated_file_is_reported_not_a_crash(walker_file, tmp_path):
    path = tmp_path / "walker.npz"
    shutil.copy(walker_file, path)
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(path)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, check=False)
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])  # -7 is SIGBUS
    assert "env 0" in done.stdout  # still showing the env it showed
    assert f"error {path}: changed on disk since it was opened (its size changed" in done.stdout
    assert "rollrec replay: " in done.stderr


def test_file_replaced_while_serving(walker_file, tmp_path, make_fields):
    path = tmp_path / "walker.npz"
    shutil.copy(walker_file, path)
    server = viser.ViserServer(host="127.0.0.1", port=0, verbose=False)
    rollout = rollrec.load(path)
    try:
        app = ReplayApp(rollout, server)
        before = app.state.data.base_pos.copy()
        rollrec.save(tmp_path / "other.npz", make_fields(5, 2), dt=0.1)
        os.replace(tmp_path / "other.npz", path)
        app.select_env(1)
        assert app.state.env == 0 and (app.state.data.base_pos == before).all()
        assert "another file was put in its place" in app.file_error
    finally:
        server.stop()
        rollout.close()


PLAYBACK_SCRIPT = textwrap.dedent("""
    import os, sys, time
    import viser, rollrec
    from rollrec.viewer import ReplayApp
    path = sys.argv[1]
    server = viser.ViserServer(host="127.0.0.1", port=0, verbose=False)
    rollout = rollrec.load(path)
    app = ReplayApp(rollout, server, ghosts=True)
    app.wait_overview(60)
    app.start()
    app.play()
    time.sleep(0.3)
    os.truncate(path, 4096)                 # the ghosts read a row of base_pos every frame
    deadline = time.monotonic() + 10
    while app.file_error is None and time.monotonic() < deadline:
        time.sleep(0.05)
    print("playing", app.state.clock.playing, "alive", app._thread.is_alive())
    print("error", app.file_error)
    app.close()
    server.stop()
""")


def test_truncated_during_playback_pauses_and_reports(walker_file, tmp_path):
    path = tmp_path / "walker.npz"
    shutil.copy(walker_file, path)
    done = subprocess.run([sys.executable, "-c", PLAYBACK_SCRIPT, str(path)], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)}, check=False)
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])  # -7 is SIGBUS
    assert "playing False alive True" in done.stdout, done.stdout
    assert f"error {path}: " in done.stdout and "truncated while open" in done.stdout, done.stdout

"""The numbered examples run end to end (small sizes)."""

from __future__ import annotations

import importlib.util
import os
import re
import runpy
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import imageio.v3 as iio
import pytest

import rollrec

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def load_example(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_record_then_render(tmp_path):
    path = load_example("00_record_rollout").main(str(tmp_path), num_envs=16, steps=40)
    r = rollrec.load(path)
    assert (r.T, r.N) == (40, 16) and r.has_links
    videos = load_example("01_render_video").main(str(path))
    for video in videos:
        assert sum(1 for _ in iio.imiter(video)) == 40


@pytest.mark.slow
def test_record_across_ranks_under_torchrun(tmp_path):
    example = EXAMPLES / "04_record_across_ranks.py"
    code = f"import runpy, sys; sys.argv = ['x']; m = runpy.run_path({str(example)!r}); m['main']({str(tmp_path)!r}, 16, 12)"
    script = tmp_path / "run_example.py"
    script.write_text(code)
    out = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                          str(script)], capture_output=True, text=True, timeout=120, check=False,
                         env={**os.environ, "GLOO_SOCKET_IFNAME": "lo", "OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert "example_04: 36 envs x 12 steps from 2 rank(s)" in out.stdout
    with rollrec.load(tmp_path / "example_04") as r:
        assert (r.N, r.T) == (36, 12) and [s.entry.num_envs for s in r.shards] == [16, 20]


def test_record_across_ranks_without_torchrun_writes_one_file(tmp_path):
    path = load_example("04_record_across_ranks").main(str(tmp_path), 8, 5)
    assert path == tmp_path / "example_04.npz" and rollrec.load(path).N == 8


def test_mujoco_robot_example(tmp_path):
    import pytest

    pytest.importorskip("mujoco", reason="gymnasium[mujoco] is installed by scripts/setup.sh --test")
    path, video = load_example("05_mujoco_robot").main(str(tmp_path), num_envs=2, steps=20)
    with rollrec.load(path) as r:
        assert r.model is not None and r.model.num_geoms == 14
    assert sum(1 for _ in iio.imiter(video)) == 20


def test_record_a_camera(tmp_path):
    pytest.importorskip("av")
    path, video = load_example("06_record_camera").main(str(tmp_path), num_envs=64, steps=30)
    with rollrec.load(path) as r:
        assert set(r.cameras) == {"chase", "depth"} and len(r.images("chase", 12)) == 30
    assert sum(1 for _ in iio.imiter(video)) == 30


def test_examples_are_numbered_in_order_and_name_their_outputs_by_their_number():
    names = sorted(p.stem for p in EXAMPLES.glob("*.py"))
    assert [n[:2] for n in names] == [f"{i:02d}" for i in range(len(names))], names
    for name in names:
        text = (EXAMPLES / f"{name}.py").read_text()
        assert f"examples/{name}.py" in text, f"{name}: its docstring names another file"
        reads = {"01_render_video": {"00"}}.get(name, set())  # 01 renders the file 00 writes
        numbers = set(re.findall(r"example_(\d\d)", text)) - reads
        assert numbers <= {name[:2]}, f"{name} writes another example's file ({numbers})"


def test_examples_leave_no_temporary_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    rows = load_example("03_triage_overview").main(worst=2, num_envs=16, steps=80)
    assert rows and list(tmp_path.iterdir()) == []
    viewer = load_example("02_replay_viewer")
    served = []
    monkeypatch.setattr(viewer, "serve", lambda path, **kw: served.append(Path(path).is_file()))
    viewer.main(num_envs=4, steps=5)  # block=True: serves until Ctrl-C, here until `serve` returns
    assert served == [True] and list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="pass out_dir"):
        viewer.main(block=False)


def test_replay_example_takes_a_port_and_says_when_it_is_busy(tmp_path, monkeypatch, capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        monkeypatch.setattr(sys, "argv", ["02_replay_viewer.py", "--port", str(port), "--out", str(tmp_path),
                                          "--num-envs", "4", "--steps", "5"])
        with pytest.raises(SystemExit) as exit_:
            runpy.run_path(str(EXAMPLES / "02_replay_viewer.py"), run_name="__main__")
    message = str(exit_.value.code)
    assert len(message.splitlines()) == 1 and f"127.0.0.1:{port}" in message, message

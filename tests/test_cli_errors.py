"""Every subcommand that opens a file fails on a bad one with one line and exit status 1."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import rollrec
from rollrec.cli import main

REPO = Path(__file__).resolve().parents[1]
COMMANDS = {  # subcommand: extra arguments
    "info": ["--verify"],
    "replay": ["--port", "0"],
    "video": ["--quiet"],
}


def _bad_files(tmp_path: Path, make_fields) -> dict[str, Path]:
    fields = make_fields(6, 2, L=2)
    out = {}
    good = rollrec.save(tmp_path / "good.npz", fields, dt=0.02)
    data = good.read_bytes()
    out["truncated"] = tmp_path / "truncated.npz"
    out["truncated"].write_bytes(data[: len(data) // 2])
    deflated = rollrec.save(tmp_path / "deflated.npz", fields, dt=0.02, compress=True)
    raw = bytearray(deflated.read_bytes())
    pos = raw.rfind(b"rew.npy") - 46  # the central directory entry of rew.npy (read by every command)
    assert raw[pos : pos + 4] == b"PK\x01\x02"
    raw[pos + 16 : pos + 20] = b"\x00\x11\x22\x33"  # its CRC-32
    deflated.write_bytes(bytes(raw))
    out["crc"] = deflated
    fifo = tmp_path / "fifo.npz"
    os.mkfifo(fifo)
    out["fifo"] = fifo
    out["directory"] = tmp_path
    text = tmp_path / "text.npz"
    text.write_text("not a rollout\n")
    out["text"] = text
    return out


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_bad_files_give_one_line(tmp_path, make_fields, capsys, command):
    for kind, path in _bad_files(tmp_path, make_fields).items():
        code = main([command, str(path), *COMMANDS[command]])
        out, err = capsys.readouterr()
        assert code == 1, (kind, out, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"rollrec {command}: error: {path}"), (kind, err)
        assert "Traceback" not in err and "internal error" not in err, (kind, err)


def test_recover_with_a_damaged_sidecar(tmp_path, capsys):
    (tmp_path / "run.npz.partial").write_bytes(b"\0" * 100)
    for sidecar in ("{not json", "[]", '{"members": 5}', "\udcff".encode("utf-8", "surrogateescape").decode("latin1")):
        (tmp_path / "run.npz.partial.json").write_text(sidecar, encoding="latin1")
        assert main(["recover", str(tmp_path / "run.npz")]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "run.npz.partial.json" in err, err
        assert "sidecar (.partial.json) is damaged" in err or "not a rollrec sidecar" in err, err


def test_unexpected_errors_are_one_line_unless_debugging(tmp_path, make_fields, capsys, monkeypatch):
    from rollrec.cli import info

    path = rollrec.save(tmp_path / "r.npz", make_fields(3, 2), dt=0.02)

    def broken(*args, **kwargs):
        raise RuntimeError("something\nsplit")

    monkeypatch.setattr(info, "summarize", broken)
    assert main(["info", str(path)]) == 1
    err = capsys.readouterr().err
    assert err == ("rollrec info: internal error: RuntimeError: something split "
                   "(please report it; ROLLREC_DEBUG=1 shows the traceback)\n")
    monkeypatch.setenv("ROLLREC_DEBUG", "1")
    with pytest.raises(RuntimeError):
        main(["info", str(path)])


def test_the_installed_command_prints_no_traceback(tmp_path, make_fields):
    from rollrec.format.meta import encode_meta, make_meta

    bad = tmp_path / "bad.npz"
    meta = {**make_meta(num_steps=3, num_envs=2, dt=0.1), "dt": []}
    np.savez(bad, **{k: np.asarray(v) for k, v in make_fields(3, 2).items()}, meta=encode_meta(meta))
    done = subprocess.run([sys.executable, "-m", "rollrec.cli", "info", str(bad)], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)}, check=False)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith(f"rollrec info: error: {bad}: ") and done.stderr.count("\n") == 1, done.stderr


@pytest.mark.parametrize("port", ["99999", "-1", "65536"])
def test_replay_port_out_of_range_is_one_line(tmp_path, make_fields, capsys, port):
    path = rollrec.save(tmp_path / "run.npz", make_fields(6, 2), dt=0.02)
    code = main(["replay", str(path), "--port", port])
    err = capsys.readouterr().err
    assert code == 1
    assert err.strip().splitlines() == [f"rollrec replay: error: --port {port}: a port is 1..65535 (0: any free port)"]


def test_negative_env_lists_are_taken_as_values(tmp_path, make_fields, capsys):
    """``--envs -2,-1`` (argparse alone says "expected one argument") means ``--envs=-2,-1``."""
    path = rollrec.save(tmp_path / "run.npz", make_fields(4, 3, L=2), dt=0.02)
    out = tmp_path / "last_two.mp4"
    code = main(["video", str(path), "--envs", "-2,-1", "--size", "64x48", "--quiet", "-o", str(out)])
    assert code == 0, capsys.readouterr().err
    assert out.stat().st_size > 0

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


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "internal error" not in err and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("port", ["99999", "-1", "65536"])
def test_a_port_out_of_range_is_one_line(tmp_path, make_fields, capsys, port):
    path = rollrec.save(tmp_path / "r.npz", make_fields(4, 2), dt=0.02)
    assert main(["replay", str(path), "--port", port]) == 1
    assert f"port must be in 0..65535 (0: any free port), got {int(port)}" in _one_line_error(capsys)


def test_an_ipv6_address_is_printed_in_brackets(tmp_path, make_fields, capsys):
    import socket

    from rollrec.viewer.server import serve, stop_app, url

    assert url("::1", 8555) == "http://[::1]:8555" and url("127.0.0.1", 80) == "http://127.0.0.1:80"
    if not socket.has_ipv6:
        pytest.skip("no IPv6 here")
    path = rollrec.save(tmp_path / "r.npz", make_fields(4, 2), dt=0.02)
    try:
        app = serve(path, host="::1", port=0, block=False)
    except OSError as exc:  # a machine without an IPv6 loopback
        pytest.skip(f"cannot listen on ::1: {exc}")
    stop_app(app)
    assert "at http://[::1]:" in capsys.readouterr().out


def test_a_tiny_dt_does_not_reach_ffmpeg(tmp_path, make_fields, capsys):
    path = rollrec.save(tmp_path / "r.npz", make_fields(4, 2), dt=1e-300)
    assert main(["video", str(path), "-o", str(tmp_path / "v.mp4"), "--quiet"]) == 1
    err = _one_line_error(capsys)
    assert "dt (1e-300 s) plays at 1e+300 frames per second" in err and "--fps" in err and "FFMPEG" not in err
    assert main(["video", str(path), "-o", str(tmp_path / "v.mp4"), "--quiet", "--fps", "1e9"]) == 1
    assert "fps must be in (0, 1000], got 1e+09" in _one_line_error(capsys)
    assert main(["video", str(path), "-o", str(tmp_path / "v.mp4"), "--quiet", "--fps", "10"]) == 0
    assert not list(tmp_path.glob("*.partial*"))


def test_recover_on_a_full_disk_names_the_file_and_keeps_it_recoverable(tmp_path, capsys, monkeypatch):
    import errno

    import torch

    from rollrec._npz import stream

    path = tmp_path / "run.npz"
    rec = rollrec.Recorder(path, 2, segment_steps=2)
    for t in range(6):
        rec.record(obs=torch.full((2, 2), float(t)), act=torch.zeros(2, 1), rew=torch.zeros(2),
                   done=torch.zeros(2, dtype=torch.bool))
    rec._pipeline.close()
    rec._stream.close()
    rec._partial._drop_lease()  # the recorder died
    rec._finalizer.detach()
    real = stream._pwrite_all

    def full(fd, data, offset):  # the disk is full when recovery writes the file's tail
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(stream, "_pwrite_all", full)
    assert main(["recover", str(path)]) == 1
    err = _one_line_error(capsys)
    assert err.startswith(f"rollrec recover: error: {path}: recovery failed (No space left on device); the recording is "
                          f"still recoverable") and f"rollrec recover {path}` again" in err
    monkeypatch.setattr(stream, "_pwrite_all", real)
    assert main(["recover", str(path)]) == 0  # space freed: the same recording, every committed step
    with rollrec.load(path) as r:
        assert r.T == 6


def test_negative_env_lists_are_taken_as_values(tmp_path, make_fields, capsys):
    """``--envs -2,-1`` (argparse alone says "expected one argument") means ``--envs=-2,-1``."""
    path = rollrec.save(tmp_path / "run.npz", make_fields(4, 3, L=2), dt=0.02)
    out = tmp_path / "last_two.mp4"
    code = main(["video", str(path), "--envs", "-2,-1", "--size", "64x48", "--quiet", "-o", str(out)])
    assert code == 0, capsys.readouterr().err
    assert out.stat().st_size > 0

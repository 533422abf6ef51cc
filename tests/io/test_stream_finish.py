"""The stream writer finished as a rollout (`rollrec.io.partial`): the sidecar, zip64, recovery.

What `rollrec._npz.stream` promises the layer above it, checked through that layer; the stream on
its own is tested in tests/npz.
"""

from __future__ import annotations

import errno
import json
import os
import zipfile
import zlib

import numpy as np
import pytest

import rollrec
from rollrec._npz import stream as npz_stream
from rollrec._npz import zip_records
from rollrec._npz.stream import MemberSpec, NpzStreamWriter
from rollrec.io.partial import finish, partial_paths

SMALL = {"names": np.array(["a", "bb", "ccc"]), "meta": np.array('{"x": 1}')}


@pytest.fixture(params=["direct", "buffered"])
def io_mode(request, monkeypatch):
    """Rows written with direct I/O, or buffered (as where the file system refuses direct I/O)."""
    if request.param == "buffered":
        monkeypatch.setattr(npz_stream, "open_direct", lambda fd, path: None)
    else:
        request.getfixturevalue("direct_dir")  # skips where the file system refuses O_DIRECT
    return request.param


def _data(T: int = 10, N: int = 3, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "obs": rng.normal(size=(T, N, 5)).astype(np.float32),
        "rew": rng.normal(size=(T, N)),
        "done": rng.random((T, N)) < 0.3,
        "img": rng.integers(0, 255, size=(T, N, 3, 3), dtype=np.uint8),  # 9-byte rows: odd sizes
    }


def _specs(data: dict[str, np.ndarray], capacity: int) -> list[MemberSpec]:
    return [MemberSpec(k, a.dtype.str, a.shape[1:], capacity) for k, a in data.items()]


def _direct_data(T: int, N: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(T * 1000 + N)
    return {
        "obs": rng.normal(size=(T, N, 13)).astype(np.float32),  # 52 N bytes a row: rarely a whole block
        "done": rng.random((T, N)) < 0.3,
        "link_pos": rng.normal(size=(T, N, 7, 3)).astype(np.float32),
    }


def _zip64_records(path) -> tuple[bool, dict[str, bool]]:
    """(has the zip64 end records, {member: its central directory entry has a zip64 extra})."""
    raw = path.read_bytes()
    with zipfile.ZipFile(path) as zf:
        extra = {i.filename[:-4]: i.extra[:2] == b"\x01\x00" for i in zf.infolist()}
    return b"PK\x06\x06" in raw and b"PK\x06\x07" in raw, extra


@pytest.fixture
def zip64_at_1kib(monkeypatch):
    """Members and offsets from 1 KiB on need zip64 records, so small files take the zip64 path."""
    monkeypatch.setattr(zip_records, "ZIP64_LIMIT", 1024)


@pytest.mark.usefixtures("io_mode")
def test_sidecar_tracks_committed_rows_and_goes_away_when_finished(tmp_path):
    data = _data(T=6)
    sidecar = tmp_path / "r.json"
    w = NpzStreamWriter(tmp_path / "r.npz", _specs(data, 4), layout_path=str(sidecar), recovery_info={"k": 1})
    doc = json.loads(sidecar.read_text())
    assert doc["committed_rows"] == 0 and doc["info"] == {"k": 1}
    assert [m["name"] for m in doc["members"]] == list(data)
    for name, arr in data.items():
        w.append(name, arr)  # 6 rows into a capacity of 4: grows
    w.commit(6)
    doc = json.loads(sidecar.read_text())
    assert doc["committed_rows"] == 6
    assert all(m["capacity"] >= 6 for m in doc["members"])
    assert doc["committed_crc"] == {name: zlib.crc32(arr.tobytes()) for name, arr in data.items()}
    finish(w, SMALL, 6, str(tmp_path / "final.npz"), compress=False)
    assert not sidecar.exists() and not (tmp_path / "r.npz").exists()
    assert sorted(os.listdir(tmp_path)) == ["final.npz"]


@pytest.mark.usefixtures("io_mode")
def test_zip64_rollout_memory_maps(tmp_path, zip64_at_1kib, make_fields):
    fields = make_fields(30, 4, L=2)
    path = rollrec.save(tmp_path / "r.npz", fields, dt=0.02)
    assert _zip64_records(path)[0]
    with rollrec.load(path) as r:
        assert isinstance(r["link_pos"], np.memmap)
        for key in r.step_keys:
            np.testing.assert_array_equal(r[key], fields[key])


# ---- parts ----------------------------------------------------------------------------------


@pytest.mark.usefixtures("io_mode")
def test_recovery_keeps_the_committed_rows_of_variable_members(tmp_path):
    data = _data(T=8)
    index = np.arange(30, dtype=np.int64).reshape(10, 3)
    layout = str(tmp_path / "r.npz.partial.json")
    w = NpzStreamWriter(tmp_path / "r.npz.partial", [*_specs(data, 8), MemberSpec("index", "<i8", (3,), 2)],
                        layout_path=layout, recovery_info={"meta": {}}, variable=["index"])
    for name, arr in data.items():
        w.append(name, arr[:5])
    w.append("index", index[:7])
    w.commit(5)
    with open(layout) as f:
        assert json.load(f)["variable_rows"] == {"index": 7}
    for name, arr in data.items():  # written but never committed: a kill here loses them
        w.append(name, arr[5:])
    w.append("index", index[7:])
    w.close()
    again, _ = NpzStreamWriter.reopen(str(tmp_path / "r.npz.partial"), layout)
    assert again.rows == {**dict.fromkeys(data, 5), "index": 7}
    finish(again, SMALL, 5, str(tmp_path / "r.npz"), compress=False)
    with np.load(tmp_path / "r.npz", allow_pickle=False) as npz:
        np.testing.assert_array_equal(npz["index"], index[:7])
        np.testing.assert_array_equal(npz["obs"], data["obs"][:5])


def test_a_failed_direct_write_is_never_committed(direct_dir, monkeypatch):
    # The disk fills while writes are in flight: the commit refuses, the sidecar keeps naming the
    # rows committed before, and recover gives exactly those.
    final = direct_dir / "run.npz"
    data_path, layout_path = partial_paths(final)
    data = _direct_data(12, 64)
    specs = [MemberSpec(k, a.dtype.str, a.shape[1:], 12) for k, a in data.items()]
    info = {"meta": {"format_version": 1, "num_steps": 0, "num_envs": 64, "dt": 0.1, "env_name": "x"},
            "rew_term_names": [], "link_names": None, "compress": False}
    w = NpzStreamWriter(data_path, specs, layout_path=layout_path, recovery_info=info, direct=True)
    for name, arr in data.items():
        w.append(name, arr[:4], wait=False)
    w.commit(4)
    real = os.pwrite

    def full(fd, buf, offset):
        if fd == w._out.dfd:
            raise OSError(errno.ENOSPC, "No space left on device (injected)")
        return real(fd, buf, offset)

    monkeypatch.setattr(os, "pwrite", full)
    with pytest.raises(OSError, match="No space left"):  # at a later append, or at the commit that waits for them
        for name, arr in data.items():
            w.append(name, arr[4:8], wait=False)
        w.commit(8)
    with pytest.raises(OSError, match="No space left"):
        w.snapshot()
    monkeypatch.undo()
    w.close()
    with open(layout_path) as f:
        assert json.load(f)["committed_rows"] == 4
    rollrec.recover(final)
    with np.load(final, allow_pickle=False) as npz:
        np.testing.assert_array_equal(npz["obs"], data["obs"][:4])

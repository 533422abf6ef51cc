"""`NpzStreamWriter` with direct I/O and with its buffered fallback: same file, chosen as documented."""

from __future__ import annotations

import os
import shutil
import subprocess
import zipfile

import numpy as np
import pytest

from rollrec._npz import stream as npz_stream
from rollrec._npz.direct_io import BLOCK
from rollrec._npz.stream import MemberSpec, NpzStreamWriter

SMALL = {"meta": np.array('{"x": 1}')}


def _data(T: int, N: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(T * 1000 + N)
    return {
        "obs": rng.normal(size=(T, N, 13)).astype(np.float32),  # 52 N bytes a row: rarely a whole block
        "done": rng.random((T, N)) < 0.3,
        "link_pos": rng.normal(size=(T, N, 7, 3)).astype(np.float32),
    }


def _write(path, data, chunks, capacity, **kwargs) -> NpzStreamWriter:
    specs = [MemberSpec(k, a.dtype.str, a.shape[1:], capacity) for k, a in data.items()]
    w = NpzStreamWriter(path, specs, **kwargs)
    start = 0
    for n in chunks:
        for name, arr in data.items():
            w.append(name, arr[start : start + n], wait=False)
        w.drain()
        start += n
    w.finalize(SMALL, start)
    w.close()
    return w


@pytest.mark.parametrize(("N", "chunks", "capacity"), [(3, [1, 2, 7, 1], 11), (1000, [5, 5, 5], 4), (4096, [3, 1], 4)])
def test_direct_and_buffered_write_the_same_rollout(direct_dir, member_data_offsets, N, chunks, capacity):
    data = _data(sum(chunks), N)
    a = _write(direct_dir / "direct.npz", data, chunks, capacity, direct=True)
    b = _write(direct_dir / "buffered.npz", data, chunks, capacity, direct=False)
    assert a.direct and not b.direct
    for path, align in ((direct_dir / "direct.npz", BLOCK), (direct_dir / "buffered.npz", 64)):
        with zipfile.ZipFile(path) as zf:
            assert zf.testzip() is None
        if shutil.which("unzip"):
            out = subprocess.run(["unzip", "-t", str(path)], capture_output=True, text=True, check=False)
            assert out.returncode == 0, out.stdout
        offsets = member_data_offsets(path)
        assert all(offsets[k] % align == 0 for k in data), offsets
        with np.load(path, allow_pickle=False) as npz:
            for k, arr in data.items():
                np.testing.assert_array_equal(npz[k], arr)


def test_direct_rows_never_enter_the_page_cache(direct_dir, page_cache_bytes):
    data = _data(40, 4096)  # 14 MB of rows
    path = direct_dir / "r.npz"
    _write(path, data, [10, 10, 20], 40, direct=True)
    assert os.path.getsize(path) > 14e6
    assert page_cache_bytes(path) < 1 << 20  # headers and the tail, written through the page cache


def test_refused_direct_io_falls_back_to_buffered_writes(tmp_path, monkeypatch):
    monkeypatch.setattr(npz_stream, "open_direct", lambda fd, path: None)  # as a network file system
    data = _data(5, 7)
    w = _write(tmp_path / "r.npz", data, [2, 3], 5)
    assert not w.direct
    with np.load(tmp_path / "r.npz") as npz:
        np.testing.assert_array_equal(npz["link_pos"], data["link_pos"])
    with pytest.raises(OSError, match="refuses direct I/O"):
        NpzStreamWriter(tmp_path / "s.npz", [MemberSpec("x", "<f4", (2,), 4)], direct=True)
    assert not (tmp_path / "s.npz").exists()

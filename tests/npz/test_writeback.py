"""The buffered fallback: bytes land exactly and at most a window of them stays in the page cache."""

from __future__ import annotations

import os

import numpy as np
import pytest

from rollrec._npz import writeback
from rollrec._npz.writeback import BufferedWriter, WritebackWindow


@pytest.fixture
def drops_pages(tmp_path, page_cache_bytes):
    """Skip where the file system keeps pages it was told it may drop (tmpfs: they are the file)."""
    probe = tmp_path / "probe"
    probe.write_bytes(b"x" * (1 << 20))
    fd = os.open(probe, os.O_RDONLY)
    os.fsync(fd)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)
    if page_cache_bytes(probe) > 256 << 10:
        pytest.skip(f"{tmp_path}: this file system keeps written pages resident")
    probe.unlink()


def test_buffered_writes_land_exactly_and_leave_a_window_behind(tmp_path, drops_pages, page_cache_bytes):
    path = tmp_path / "f.bin"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL)
    w = BufferedWriter(fd, window=1 << 20)
    data = np.random.default_rng(0).integers(0, 255, 16 << 20, dtype=np.uint8)
    for a in range(0, data.size, 256 << 10):
        w.write("m", a, data[a : a + (256 << 10)])
        assert w.window._bytes <= 1 << 20
    w.drain()
    assert page_cache_bytes(path) <= (1 << 20) + (256 << 10)  # 16 MiB written, at most the window cached
    assert os.pread(fd, data.size, 0) == data.tobytes()
    os.close(fd)


def test_finish_drops_every_range(tmp_path, drops_pages, page_cache_bytes):
    path = tmp_path / "f.bin"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL)
    window = WritebackWindow(fd, limit=64 << 20)
    os.pwrite(fd, b"y" * (4 << 20), 0)
    window.wrote(0, 4 << 20)
    window.finish()
    assert page_cache_bytes(path) == 0
    os.close(fd)


def test_without_sync_file_range_the_bytes_still_land(tmp_path, monkeypatch):
    monkeypatch.setattr(writeback, "_sync_file_range", None)  # as off Linux
    path = tmp_path / "f.bin"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL)
    w = BufferedWriter(fd, window=4096)
    for i in range(10):
        w.write("m", i * 5000, np.full(5000, i, dtype=np.uint8))
    assert os.pread(fd, 50_000, 0) == b"".join(bytes([i]) * 5000 for i in range(10))
    os.close(fd)


def test_a_failed_write_poisons_the_buffered_writer(tmp_path, monkeypatch):
    path = tmp_path / "f.bin"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL)
    w = BufferedWriter(fd)
    monkeypatch.setattr(os, "pwrite", lambda *a: (_ for _ in ()).throw(OSError(28, "No space left on device")))
    with pytest.raises(OSError, match="No space"):
        w.write("m", 0, np.zeros(10, np.uint8))
    monkeypatch.undo()
    with pytest.raises(OSError, match="No space"):
        w.drain()
    with pytest.raises(OSError, match="No space"):
        w.write("m", 0, np.zeros(10, np.uint8))
    os.close(fd)

"""Direct I/O: the bytes land exactly, every write is whole aligned blocks, failures are never silent."""

from __future__ import annotations

import errno
import os
import threading

import numpy as np
import pytest

from rollrec._npz import direct_io
from rollrec._npz.direct_io import BLOCK, DirectWriter, address, aligned_array, open_direct


@pytest.fixture
def aligned_writes(monkeypatch):
    """Every ``os.pwrite`` on a descriptor in the returned set must be whole aligned blocks from aligned memory."""
    checked: set[int] = set()
    seen: list[tuple[int, int]] = []
    real = os.pwrite

    def pwrite(fd, data, offset):
        if fd in checked:
            arr = np.frombuffer(data, dtype=np.uint8)
            assert offset % BLOCK == 0, f"write at {offset}"
            assert arr.size % BLOCK == 0, f"write of {arr.size} bytes"
            assert address(arr) % BLOCK == 0, f"write from address {address(arr):#x}"
            seen.append((offset, arr.size))
        return real(fd, data, offset)

    monkeypatch.setattr(os, "pwrite", pwrite)
    return checked, seen


def _file(tmp_path, name="f.bin"):
    path = tmp_path / name
    return path, os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL)


def test_streams_of_any_length_and_alignment_land_exactly(tmp_path, aligned_writes):
    # Three members at 4 KiB-aligned offsets; appends of odd sizes, from memory aligned where the
    # file is (zero copy) or not (bounce buffers), starting mid-block (the carry).
    checked, seen = aligned_writes
    _, fd = _file(tmp_path)
    dfd = os.dup(fd)  # the logic is checked on any file system: the "direct" descriptor is a plain one here
    checked.add(dfd)
    w = DirectWriter(dfd, fd, threads=3)
    rng = np.random.default_rng(0)
    bases = {"a": 0, "b": 8 << 20, "c": 12 << 20}
    expected = {k: bytearray() for k in bases}
    for i in range(60):
        key = "abc"[i % 3]
        n = int(rng.choice([1, 7, 100, 4095, 4096, 4097, 10_000, 70_000, 300_000]))
        end = bases[key] + len(expected[key])
        if rng.random() < 0.5:  # memory aligned where the file is
            buf = aligned_array(n + 2 * BLOCK)
            src = buf[end % BLOCK : end % BLOCK + n]
        else:
            src = np.empty(n + 1, dtype=np.uint8)[1:]
        src[:] = rng.integers(0, 255, n, dtype=np.uint8)
        w.write(key, end, src)
        expected[key] += src.tobytes()
        if i % 7 == 0:
            w.drain()
    w.drain()
    w.close()
    for key, base in bases.items():
        assert os.pread(fd, len(expected[key]), base) == bytes(expected[key]), key
    assert w.zero_copy_bytes > 0 and w.copied_bytes > 0
    assert seen and not [t for t in threading.enumerate() if t.name.startswith("rollrec-io")]
    os.close(fd)


def test_the_last_partial_block_is_on_disk_after_each_write(tmp_path):
    # Rows a commit names must be on disk even when they end mid-block.
    path, fd = _file(tmp_path)
    w = DirectWriter(os.dup(fd), fd)
    w.write("m", 0, np.frombuffer(b"x" * 5000, dtype=np.uint8))
    w.drain()
    assert os.pread(fd, 5000, 0) == b"x" * 5000
    w.write("m", 5000, np.frombuffer(b"y" * 10, dtype=np.uint8))
    w.drain()
    assert os.pread(fd, 5010, 0) == b"x" * 5000 + b"y" * 10
    assert os.path.getsize(path) == 2 * BLOCK  # padded to whole blocks: the space past the end is the member's own
    w.close()
    os.close(fd)


def test_a_slow_padded_block_never_lands_over_the_rows_that_continue_it(tmp_path, monkeypatch):
    # Two writes in flight share a block: the first pads the stream's last block with zeros, the
    # second rewrites it with the next rows. However slow the first, the file ends with the rows.
    _, fd = _file(tmp_path)
    real, calls = direct_io._pwrite_blocks, []

    def slow_first(dfd, buf, offset):
        calls.append(offset)
        if len(calls) == 1:
            threading.Event().wait(0.2)
        real(dfd, buf, offset)

    monkeypatch.setattr(direct_io, "_pwrite_blocks", slow_first)
    w = DirectWriter(os.dup(fd), fd, threads=2)
    w.write("m", 0, np.frombuffer(b"x" * 100, dtype=np.uint8))  # block 0, padded: the slow write
    w.write("m", 100, np.frombuffer(b"y" * 50, dtype=np.uint8))  # block 0 again, on the other thread
    w.drain()
    assert os.pread(fd, 150, 0) == b"x" * 100 + b"y" * 50
    w.close()
    os.close(fd)


def test_a_moved_stream_continues_from_its_bytes_where_they_are_now(tmp_path):
    # After the writer's layout moves a member (its rows copied elsewhere), the carry no longer
    # describes the new place: the bytes before the next write are read back from the file.
    _, fd = _file(tmp_path)
    w = DirectWriter(os.dup(fd), fd)
    first = np.arange(6000, dtype=np.int64).view(np.uint8)[:6000]
    w.write("m", 0, first)
    w.drain()
    os.pwrite(fd, first.tobytes(), 1 << 20)  # the member moved to 1 MiB
    more = np.full(3000, 7, dtype=np.uint8)
    w.write("m", (1 << 20) + 6000, more)
    w.drain()
    assert os.pread(fd, 9000, 1 << 20) == first.tobytes() + more.tobytes()
    w.close()
    os.close(fd)


def test_a_failed_write_poisons_the_writer(tmp_path, monkeypatch):
    _, fd = _file(tmp_path)
    w = DirectWriter(os.dup(fd), fd)
    real = os.pwrite

    def full(f, data, offset):
        if offset + len(memoryview(data)) > 1 << 20:
            raise OSError(errno.ENOSPC, "No space left on device (injected)")
        return real(f, data, offset)

    monkeypatch.setattr(os, "pwrite", full)
    w.write("m", 0, aligned_array(2 << 20))
    with pytest.raises(OSError, match="No space left"):
        w.drain()
    with pytest.raises(OSError, match="No space left"):
        w.write("m", 2 << 20, aligned_array(BLOCK))
    with pytest.raises(OSError, match="No space left"):
        w.drain()
    w.close()  # still releases its threads
    assert not [t for t in threading.enumerate() if t.name.startswith("rollrec-io")]
    os.close(fd)


def test_memory_is_not_reused_before_its_writes_complete(tmp_path, monkeypatch):
    # Bounce buffers are few (they bound the memory a writer holds): a stream larger than all of
    # them waits for earlier writes to complete before reusing a buffer, never overwrites one in flight.
    monkeypatch.setattr(direct_io, "CHUNK", 64 << 10)
    monkeypatch.setattr(direct_io, "_BOUNCE_BUFFERS", 2)
    _, fd = _file(tmp_path)
    w = DirectWriter(os.dup(fd), fd, threads=2)
    src = np.random.default_rng(1).integers(0, 255, 1_000_001, dtype=np.uint8)[1:]  # misaligned: bounced
    w.write("m", 0, src)
    w.drain()
    w.close()
    assert os.pread(fd, src.size, 0) == src.tobytes()
    assert w.copied_bytes == src.size
    os.close(fd)


def test_open_direct_gives_a_descriptor_of_the_same_file(tmp_path):
    path, fd = _file(tmp_path)
    dfd = open_direct(fd, str(path))
    if dfd is None:
        pytest.skip(f"{tmp_path}: this file system refuses O_DIRECT")
    try:
        assert os.fstat(dfd).st_ino == os.fstat(fd).st_ino
        buf = aligned_array(BLOCK)
        buf[:] = 42
        assert os.pwrite(dfd, memoryview(buf), BLOCK) == BLOCK
        assert os.pread(fd, BLOCK, BLOCK) == bytes([42]) * BLOCK
    finally:
        os.close(dfd)
        os.close(fd)


def test_open_direct_says_none_where_the_file_system_refuses(tmp_path, monkeypatch):
    path, fd = _file(tmp_path)
    real_open = os.open

    def refuse(p, flags, *args):
        if flags & getattr(os, "O_DIRECT", 0):
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_open(p, flags, *args)

    monkeypatch.setattr(os, "open", refuse)
    assert open_direct(fd, str(path)) is None
    monkeypatch.setattr(os, "open", real_open)
    real_pwrite = os.pwrite
    monkeypatch.setattr(os, "pwrite", lambda *a: (_ for _ in ()).throw(OSError(errno.EINVAL, "Invalid argument")))
    assert open_direct(fd, str(path)) is None  # takes the flag, refuses the write (some network file systems)
    monkeypatch.setattr(os, "pwrite", real_pwrite)
    os.close(fd)

"""`NpzStreamWriter`: the stored npz written in place, row chunk by row chunk.

Every test runs with rows written by direct I/O (where the test folder's file system takes it) and
by the buffered fallback; `tests/io/test_npz_direct.py` has what is specific to each.
"""

from __future__ import annotations

import io
import itertools
import os
import re
import shutil
import subprocess
import zipfile
import zlib

import numpy as np
import pytest

from rollrec._npz import stream as npz_stream
from rollrec._npz import zip_records
from rollrec._npz.files import allocated_bytes
from rollrec._npz.stream import MemberSpec, NpzStreamWriter
from rollrec._npz.zip_records import crc32_combine, npy_header

SMALL = {"names": np.array(["a", "bb", "ccc"]), "meta": np.array('{"x": 1}')}


@pytest.fixture(autouse=True, params=["direct", "buffered"])
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


def _write(path, data, *, capacity=None, chunks=None, num_rows=None, **kwargs) -> NpzStreamWriter:
    T = next(iter(data.values())).shape[0]
    w = NpzStreamWriter(path, _specs(data, capacity or T), **kwargs)
    bounds = [0, *np.cumsum(chunks or [T]).tolist()]
    for a, b in itertools.pairwise(bounds):
        for name, arr in data.items():
            w.append(name, arr[a:b])
    w.finalize(SMALL, num_rows)
    w.close()  # its descriptors and I/O threads; what it wrote and counted stays readable
    return w


def _check_archive(path) -> None:
    with zipfile.ZipFile(path) as zf:
        assert zf.testzip() is None
    if shutil.which("unzip"):
        result = subprocess.run(["unzip", "-t", str(path)], capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stdout + result.stderr


def _read_back(path) -> dict[str, np.ndarray]:
    """Every member, read through the zip central directory (np.load also needs a header at byte 0)."""
    with zipfile.ZipFile(path) as zf:
        out = {}
        for info in zf.infolist():
            with zf.open(info) as f:
                out[info.filename.removesuffix(".npy")] = np.lib.format.read_array(f, allow_pickle=False)
        return out


@pytest.fixture
def frozen_clock(monkeypatch):
    """Zip timestamps come from the clock; freeze it so two files can be compared byte for byte."""
    monkeypatch.setattr(npz_stream.time, "time", lambda: 1_750_000_000.0)


def test_one_shot_file_is_what_numpy_reads(tmp_path):
    data = _data()
    _write(tmp_path / "a.npz", data)
    _check_archive(tmp_path / "a.npz")
    with np.load(tmp_path / "a.npz", allow_pickle=False) as npz:
        assert npz.files == [*data, *SMALL]
        for name, arr in {**data, **SMALL}.items():
            assert npz[name].dtype == arr.dtype
            np.testing.assert_array_equal(npz[name], arr)


@pytest.mark.parametrize("chunks", [[1] * 10, [3, 3, 3, 1]], ids=["rows", "chunks"])
def test_chunks_give_the_same_bytes_as_one_shot(tmp_path, frozen_clock, chunks):
    data = _data()
    _write(tmp_path / "one.npz", data)
    _write(tmp_path / "chunked.npz", data, chunks=chunks)
    assert (tmp_path / "chunked.npz").read_bytes() == (tmp_path / "one.npz").read_bytes()


SPARE_OR_GROWN = pytest.mark.parametrize(
    "chunks, capacity",
    [([4, 6], 25), ([2, 5, 3], 3), ([10], 1), ([4, 6], 100_000)],
    ids=["spare-capacity", "grows", "grows-at-once", "much-spare"],
)


@SPARE_OR_GROWN
def test_spare_or_grown_capacity_reads_back(tmp_path, chunks, capacity):
    data = _data()
    w = _write(tmp_path / "r.npz", data, chunks=chunks, capacity=capacity)
    assert w.capacity >= 10
    _check_archive(tmp_path / "r.npz")
    with np.load(tmp_path / "r.npz", allow_pickle=False) as npz:  # byte 0 is a zip header, grown or not
        for name, arr in {**data, **SMALL}.items():
            np.testing.assert_array_equal(npz[name], arr)


@pytest.fixture(params=["collapse", "copy"])
def hole_closing(request, tmp_path, monkeypatch, collapses):
    """How finalize closes holes: removing them in place (``COLLAPSE_RANGE``, where the test folder's
    file system takes it), or copying members down (as on tmpfs, btrfs, NFS)."""
    if request.param == "copy":
        monkeypatch.setattr(npz_stream, "collapse_range", lambda fd, offset, length: False)
    elif not collapses:
        pytest.skip(f"{tmp_path}: this file system cannot collapse ranges")
    return request.param


@SPARE_OR_GROWN
def test_closing_every_hole_gives_a_file_the_size_of_a_one_shot_write(tmp_path, monkeypatch, chunks, capacity, hole_closing,
                                                                     io_mode):
    for name in ("_COMPACT_MIN_HOLES", "_COMPACT_MIN_FRACTION", "_MIN_SLIDE"):
        monkeypatch.setattr(npz_stream, name, 0)  # close even the smallest hole
    data = _data()
    _write(tmp_path / "one.npz", data)
    _write(tmp_path / "closed.npz", data, chunks=chunks, capacity=capacity)
    # Copied: members may change places (one whose new place overlapped its rows went past the end
    # first); only the 64-byte alignment padding may differ. Collapsed: the same file with direct
    # I/O (data on 4 KiB boundaries, as the ranges removed); buffered, data may stay up to a block
    # further than a one-shot write puts it (ranges go in whole blocks).
    size, one = os.path.getsize(tmp_path / "closed.npz"), os.path.getsize(tmp_path / "one.npz")
    if hole_closing == "copy":
        assert one - 64 * len(data) <= size <= one + 64 * len(data)
    elif io_mode == "direct":
        assert size == one
    else:
        assert one <= size < one + 4096 * len(data)
    _check_archive(tmp_path / "closed.npz")
    with np.load(tmp_path / "closed.npz", allow_pickle=False) as npz:
        assert npz.files == [*data, *SMALL]  # the directory keeps the order given
        for name, arr in {**data, **SMALL}.items():
            np.testing.assert_array_equal(npz[name], arr)


def test_growing_copies_only_the_members_after_the_largest(tmp_path, monkeypatch):
    copied = []
    real = npz_stream.NpzStreamWriter._copy  # every copy between places of the file goes through it
    monkeypatch.setattr(npz_stream.NpzStreamWriter, "_copy", lambda self, src, dst, n: copied.append(n) or real(self, src, dst, n))
    data = _data(T=10, N=50)  # obs: 1000 bytes a row, the largest
    _write(tmp_path / "r.npz", data, chunks=[5, 5], capacity=5)
    assert sum(copied) == 5 * sum(a[0].nbytes for name, a in data.items() if name != "obs")
    with np.load(tmp_path / "r.npz", allow_pickle=False) as npz:
        np.testing.assert_array_equal(npz["obs"], data["obs"])


def test_finalize_leaves_small_holes_and_gives_unused_capacity_back(tmp_path, member_data_offsets, monkeypatch):
    monkeypatch.setattr(npz_stream, "collapse_range", lambda fd, offset, length: False)  # holes are copied over...
    monkeypatch.setattr(npz_stream, "_COMPACT_MIN_HOLES", 1 << 40)  # ... where they are this size
    data = _data(T=10, N=64)
    path = tmp_path / "r.npz"
    w = _write(path, data, capacity=20_000)  # ~57 MB reserved, 28 kB written
    assert {name: p.data_offset for name, p in w._placements.items()} == {
        name: off for name, off in member_data_offsets(path).items() if name in data
    }
    _check_archive(path)
    assert _read_back(path).keys() == {*data, *SMALL}
    assert os.path.getsize(path) > w._placements["img"].data_offset > 30e6  # the members stayed in place...
    allocated = allocated_bytes(path)
    if allocated is not None and allocated > 10 << 20:
        pytest.skip("this file system does not punch holes")
    assert allocated < 1 << 20  # ...but take no disk space
def test_collapsing_removes_the_holes_without_copying_a_byte(tmp_path, member_data_offsets, monkeypatch, frozen_clock,
                                                             io_mode, collapses):
    if not collapses:
        pytest.skip(f"{tmp_path}: this file system cannot collapse ranges")
    monkeypatch.setattr(npz_stream.NpzStreamWriter, "_copy", lambda *a: pytest.fail("a member was copied"))
    data = _data(T=10, N=64)
    path = tmp_path / "r.npz"
    w = _write(path, data, capacity=20_000)  # ~57 MB reserved, 28 kB written
    _write(tmp_path / "one.npz", data)
    assert {name: p.data_offset for name, p in w._placements.items()} == {
        name: off for name, off in member_data_offsets(path).items() if name in data
    }
    assert os.path.getsize(path) <= os.path.getsize(tmp_path / "one.npz") + 2 * 4096 * len(data)
    assert all(off % w.align == 0 for off in member_data_offsets(path).values())  # aligned as written (4 KiB: direct)
    if io_mode == "direct":  # every member where a one-shot write puts it, headers included
        assert path.read_bytes() == (tmp_path / "one.npz").read_bytes()
    _check_archive(path)
    for name, arr in {**data, **SMALL}.items():
        np.testing.assert_array_equal(_read_back(path)[name], arr)


def test_finalize_fewer_rows_than_written_keeps_the_first_rows(tmp_path):
    data = _data(T=10)
    _write(tmp_path / "cut.npz", data, capacity=64, num_rows=7)
    _check_archive(tmp_path / "cut.npz")
    with np.load(tmp_path / "cut.npz", allow_pickle=False) as npz:
        for name, arr in data.items():
            np.testing.assert_array_equal(npz[name], arr[:7])


def test_finalize_refuses_rows_not_written(tmp_path):
    data = _data(T=4)
    w = NpzStreamWriter(tmp_path / "r.npz", _specs(data, 8))
    for name, arr in data.items():
        w.append(name, arr[: 2 if name == "rew" else 4])
    with pytest.raises(ValueError, match="'rew' has 2 rows, fewer than the 4 being finalised"):
        w.finalize({}, 4)
    w.abort()


def test_object_arrays_are_never_written(tmp_path):
    data = _data(T=2)
    w = NpzStreamWriter(tmp_path / "r.npz", _specs(data, 2))
    for name, arr in data.items():
        w.append(name, arr)
    with pytest.raises(ValueError, match="'bad': object arrays are never written"):
        w.finalize({"bad": np.array([None, {}], dtype=object)})
    w.abort()


def test_abort_removes_the_file_and_sidecar(tmp_path):
    path, sidecar = tmp_path / "r.npz.partial", tmp_path / "r.npz.partial.json"
    w = NpzStreamWriter(path, _specs(_data(T=2), 2), layout_path=str(sidecar))
    assert path.exists() and sidecar.exists()
    w.abort()
    assert not path.exists() and not sidecar.exists()


def test_row_data_is_64_byte_aligned_in_the_finished_file(tmp_path, member_data_offsets):
    data = _data(T=7)
    _write(tmp_path / "r.npz", data, capacity=9, num_rows=7)
    offsets = member_data_offsets(tmp_path / "r.npz")
    assert set(offsets) == set(data) | set(SMALL)
    assert {name: off % 64 for name, off in offsets.items()} == dict.fromkeys(offsets, 0)


# ---- zip64 ----------------------------------------------------------------------------------
@pytest.fixture
def zip64_at_1kib(monkeypatch):
    """Members and offsets from 1 KiB on need zip64 records, so small files take the zip64 path."""
    monkeypatch.setattr(zip_records, "ZIP64_LIMIT", 1024)


def _zip64_records(path) -> tuple[bool, dict[str, bool]]:
    """(has the zip64 end records, {member: its central directory entry has a zip64 extra})."""
    raw = path.read_bytes()
    with zipfile.ZipFile(path) as zf:
        extra = {i.filename[:-4]: i.extra[:2] == b"\x01\x00" for i in zf.infolist()}
    return b"PK\x06\x06" in raw and b"PK\x06\x07" in raw, extra


@pytest.mark.parametrize("capacity", [None, 200], ids=["exact", "compacted"])
def test_zip64_path_is_read_by_zipfile_numpy_and_unzip(tmp_path, zip64_at_1kib, capacity):
    data = _data(T=40, N=3)  # obs: 40*3*5*4 = 2400 bytes > 1 KiB
    path = tmp_path / "z.npz"
    _write(path, data, capacity=capacity, chunks=[15, 25])
    end_records, member_zip64 = _zip64_records(path)
    assert end_records
    assert member_zip64["obs"] and member_zip64["meta"]  # a large member; a member past 1 KiB
    _check_archive(path)
    with np.load(path, allow_pickle=False) as npz:
        for name, arr in {**data, **SMALL}.items():
            np.testing.assert_array_equal(npz[name], arr)


# ---- parts ----------------------------------------------------------------------------------
@pytest.mark.parametrize("len_a, len_b", [(0, 0), (0, 7), (5, 0), (1, 1), (13, 1000), (4096, 3), (777, 65_537)])
def test_crc32_combine_matches_zlib(len_a, len_b):
    rng = np.random.default_rng(len_a * 7 + len_b)
    a = rng.integers(0, 256, len_a, dtype=np.uint8).tobytes()
    b = rng.integers(0, 256, len_b, dtype=np.uint8).tobytes()
    assert crc32_combine(zlib.crc32(a), zlib.crc32(b), len(b)) == zlib.crc32(a + b)


@pytest.mark.parametrize(
    "dtype, shape", [("<f4", (0, 3)), ("|b1", (10, 4)), ("<U7", (5,)), ("<f8", (2**40, 4096, 3)), ("|u1", ())]
)
def test_npy_header_is_read_back_by_numpy(dtype, shape):
    header = npy_header(dtype, shape)
    assert len(header) % 64 == 0
    f = io.BytesIO(header)
    version = np.lib.format.read_magic(f)
    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    assert read(f) == (shape, False, np.dtype(dtype))
    assert f.tell() == len(header)


def test_npy_header_fixed_length_and_overflow():
    assert len(npy_header("<f4", (3, 4), 192)) == 192
    with pytest.raises(ValueError, match="does not fit in 64 bytes"):
        npy_header("<f4", tuple(range(1, 30)), 64)


@pytest.mark.parametrize(
    "rows, got",
    [(np.zeros((2, 3, 5)), "got [2, 3, 5] float64"), (np.zeros((2, 3, 4), np.float32), "got [2, 3, 4] float32")],
    ids=["dtype", "row-shape"],
)
def test_append_refuses_rows_of_another_layout(tmp_path, rows, got):
    data = _data(T=4)
    w = NpzStreamWriter(tmp_path / "r.npz", _specs(data, 4))
    with pytest.raises(ValueError, match=re.escape(f"'obs': expected rows [n, 3, 5] float32, {got}")):
        w.append("obs", rows)
    assert w.rows["obs"] == 0
    for name, arr in data.items():
        w.append(name, arr)
    w.finalize(SMALL)
    w.close()
    with np.load(tmp_path / "r.npz", allow_pickle=False) as npz:
        np.testing.assert_array_equal(npz["obs"], data["obs"])


def test_variable_members_hold_their_own_rows_and_grow_alone(tmp_path, monkeypatch):
    copied = []
    real = npz_stream.NpzStreamWriter._copy  # every copy between places of the file goes through it
    monkeypatch.setattr(npz_stream.NpzStreamWriter, "_copy", lambda self, src, dst, n: copied.append(n) or real(self, src, dst, n))
    data = _data(T=6, N=50)
    rng = np.random.default_rng(1)
    index = rng.integers(0, 99, size=(41, 3))  # 41 rows appended in bursts, past a capacity of 4
    specs = [*_specs(data, 6), MemberSpec("index", index.dtype.str, (3,), 4)]
    w = NpzStreamWriter(tmp_path / "r.npz", specs, variable=["index"])
    for a, b in ((0, 3), (3, 6)):
        for name, arr in data.items():
            w.append(name, arr[a:b])
    for a, b in ((0, 5), (5, 6), (6, 30), (30, 41)):
        w.append("index", index[a:b])
    assert w.snapshot()[0] == 6 and w.snapshot()[2] == {"index": 41}
    assert sum(copied) == (6 + 30) * index[0].nbytes  # only the index moved (capacity 4 -> 16 -> 32 -> 64)
    w.finalize(SMALL, 6)
    w.close()
    _check_archive(tmp_path / "r.npz")
    with np.load(tmp_path / "r.npz", allow_pickle=False) as npz:
        np.testing.assert_array_equal(npz["index"], index)
        for name, arr in data.items():
            np.testing.assert_array_equal(npz[name], arr)


@pytest.mark.skipif(not os.path.isdir("/dev/shm"), reason="needs a tmpfs at /dev/shm")
def test_in_memory_only_the_tail_is_reserved_and_a_file_too_large_still_fails_up_front(io_mode):
    import tempfile

    with tempfile.TemporaryDirectory(dir="/dev/shm") as d:
        path = os.path.join(d, "r.npz")
        data = _data(T=10, N=64)
        w = NpzStreamWriter(path, _specs(data, 100_000))  # ~290 MB of capacity: zeroing it would cost a write
        assert allocated_bytes(path) <= 2 << 20  # the tail's 1 MiB (and the direct-I/O probe's block)
        w.abort()
        free = shutil.disk_usage(d).free
        with pytest.raises(OSError, match="no space left for"):
            NpzStreamWriter(path, [MemberSpec("obs", "<f4", (1024,), free // 4096 + 1)])
        assert os.listdir(d) == []


@pytest.mark.parametrize("rows", [0, 3])
def test_without_fallocate_the_file_ends_where_its_writes_end_and_still_finishes(tmp_path, monkeypatch, rows):
    def refuse(fd, offset, length):
        raise OSError(95, "Operation not supported")

    monkeypatch.setattr(npz_stream.os, "posix_fallocate", refuse)  # a file system without it: nothing reserved
    data = _data(T=rows, N=64) if rows else {k: v[:0] for k, v in _data(T=1, N=64).items()}
    _write(tmp_path / "r.npz", data, capacity=1000)  # holes past the last member's rows may reach the file's end
    _check_archive(tmp_path / "r.npz")
    for name, arr in {**data, **SMALL}.items():
        np.testing.assert_array_equal(_read_back(tmp_path / "r.npz")[name], arr)


@pytest.mark.parametrize("refused_at", [1, 2, 3])
def test_a_removal_refused_midway_ends_in_copies_and_a_correct_file(tmp_path, monkeypatch, refused_at, collapses):
    if not collapses:
        pytest.skip(f"{tmp_path}: this file system cannot collapse ranges")
    calls = []
    real = npz_stream.collapse_range

    def flaky(fd, offset, length):
        calls.append(offset)
        if len(calls) == refused_at + 1:  # +1: the probe of the new file
            raise OSError(1, "Operation not permitted")
        return real(fd, offset, length)

    monkeypatch.setattr(npz_stream, "collapse_range", flaky)
    for name in ("_COMPACT_MIN_HOLES", "_COMPACT_MIN_FRACTION", "_MIN_SLIDE"):
        monkeypatch.setattr(npz_stream, name, 0)  # what was not removed is copied over
    data = _data(T=10, N=64)
    path = tmp_path / "r.npz"
    w = _write(path, data, capacity=5000, layout_path=str(tmp_path / "r.npz.json"))
    assert len(calls) > refused_at and w._collapse is False
    _check_archive(path)
    for name, arr in {**data, **SMALL}.items():
        np.testing.assert_array_equal(_read_back(path)[name], arr)
    assert os.path.getsize(path) < 200_000  # the holes closed all the same (5000 rows reserved: ~14 MB)

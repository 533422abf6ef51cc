"""`replace_small_file`: the one atomic small-file replace (sidecar, manifest, model kept for recovery)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

import pytest

from rollrec._npz import files


def test_the_content_is_replaced_and_no_temporary_file_is_left(tmp_path):
    path = tmp_path / "state.json"
    files.replace_small_file(path, b"old")
    files.replace_small_file(str(path), b"new content")
    assert path.read_bytes() == b"new content"
    assert os.listdir(tmp_path) == ["state.json"]


def test_a_named_temporary_file_is_used_and_removed(tmp_path, monkeypatch):
    path, tmp = tmp_path / "manifest.json", tmp_path / ".manifest.json.7.tmp"
    seen = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda src, dst: (seen.append((os.fspath(src), os.path.exists(src))),
                                                         real_replace(src, dst))[1])
    files.replace_small_file(path, b"{}", tmp=tmp)
    assert seen == [(str(tmp), True)]
    assert os.listdir(tmp_path) == ["manifest.json"]


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="symlinks")
def test_a_planted_symlink_at_the_temporary_name_is_never_followed(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    path = tmp_path / "state.json"
    os.symlink(victim, str(path) + ".tmp")
    files.replace_small_file(path, b"data")
    assert victim.read_text() == "precious"
    assert path.read_bytes() == b"data" and not os.path.lexists(str(path) + ".tmp")


@pytest.mark.parametrize("fails", ["write", "fsync", "replace"])
def test_a_failure_leaves_the_old_content_and_no_temporary_file(tmp_path, monkeypatch, fails):
    path = tmp_path / "state.json"
    path.write_bytes(b"old")

    def broken(*args, **kwargs):
        raise OSError(28, f"No space left on device (injected in {fails})")

    monkeypatch.setattr(os, fails, broken)
    with pytest.raises(OSError, match="No space left"):
        files.replace_small_file(path, b"new")
    monkeypatch.undo()
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["state.json"]


def test_the_directory_entry_is_synced_after_the_rename(tmp_path, monkeypatch):
    order = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (order.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (order.append("rename"), real_replace(a, b))[1])
    files.replace_small_file(tmp_path / "x", b"1")
    assert order == ["fsync", "rename", "fsync"]  # the file, the rename, then its directory
    order.clear()
    files.replace_small_file(tmp_path / "x", b"2", sync=False)
    assert order == ["rename"]


def test_importing_a_reading_module_loads_neither_the_writer_nor_direct_io():
    code = (
        "import sys, rollrec._npz.zip_records, rollrec._npz.zipdir, rollrec._npz.npy_header\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('rollrec'))\n"
        "print(loaded)\n"
        "assert not any(m.startswith(('rollrec._npz.stream', 'rollrec._npz.direct_io', 'rollrec.io', 'rollrec.engine'))"
        " for m in loaded), loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_collapse_range_removes_the_bytes_and_moves_the_rest_down(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"a" * 4096 + b"b" * 8192 + b"c" * 4096)
    fd = os.open(path, os.O_RDWR)
    try:
        if not files.collapse_range(fd, 4096, 8192):
            pytest.skip(f"{tmp_path}: this file system cannot collapse ranges")
    finally:
        os.close(fd)
    assert path.read_bytes() == b"a" * 4096 + b"c" * 4096


@pytest.mark.skipif(not os.path.isdir("/dev/shm"), reason="needs a tmpfs at /dev/shm")
def test_collapse_range_says_false_and_changes_nothing_where_the_file_system_cannot(tmp_path):
    with tempfile.TemporaryDirectory(dir="/dev/shm") as d:  # tmpfs has no COLLAPSE_RANGE
        path = os.path.join(d, "f")
        with open(path, "wb") as f:
            f.write(b"x" * 3 * 4096)
        fd = os.open(path, os.O_RDWR)
        try:
            assert files.collapse_range(fd, 4096, 4096) is False
        finally:
            os.close(fd)
        assert os.path.getsize(path) == 3 * 4096


def test_a_misaligned_collapse_is_an_error_not_a_silent_no(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"x" * 3 * 4096)
    fd = os.open(path, os.O_RDWR)
    try:
        if not files.collapse_range(fd, 4096, 4096):
            pytest.skip(f"{tmp_path}: this file system cannot collapse ranges")
        with pytest.raises(OSError, match="COLLAPSE_RANGE"):
            files.collapse_range(fd, 100, 4096)
    finally:
        os.close(fd)

"""The recorder's rows reach the disk around the page cache, from the ring itself where it can."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

import rollrec
from rollrec.engine import Recorder
from rollrec._npz import stream as npz_stream
from rollrec._npz.direct_io import BLOCK


def step(t: int, n: int) -> dict:
    v = torch.arange(n, dtype=torch.float32) + 1000 * t
    return {
        "obs": v[:, None].repeat(1, 4), "act": -v[:, None], "rew": v, "done": (v % 3) == 0,
        "truncated": (v % 5) == 0, "base_pos": v[:, None].repeat(1, 3), "base_quat": v[:, None].repeat(1, 4),
        "reward_terms": {"a": v, "b": 2 * v},
    }


def check(path, steps: int, n: int) -> None:
    with rollrec.load(path) as r:
        assert steps == r.T
        v = np.arange(n, dtype=np.float32)[None] + 1000 * np.arange(steps, dtype=np.float32)[:, None]
        np.testing.assert_array_equal(r["obs"], np.repeat(v[..., None], 4, -1))
        np.testing.assert_array_equal(r["done"], v % 3 == 0)
        np.testing.assert_array_equal(r["rew_terms"], np.stack([v, 2 * v], -1))
        np.testing.assert_array_equal(r["base_quat"], np.repeat(v[..., None], 4, -1))


def test_rows_whose_bytes_are_whole_blocks_go_from_the_ring_without_a_copy(direct_dir):
    # N=4096: every row is a whole number of 4 KiB blocks, so whatever the segment or a partial
    # flush, the rows sit in the ring where they will sit in a block of the file.
    path = direct_dir / "r.npz"
    rec = Recorder(path, 4096, segment_steps=5, max_steps=23, flush_interval_s=1e-9)  # a flush every step
    for t in range(23):
        rec.record(**step(t, 4096))
    assert all(t.data_ptr() % BLOCK == 0 for t in rec._ring.tensors.values())
    out = rec._stream._out
    rec.close()
    assert rec._stream.direct and out.copied_bytes == 0 and out.zero_copy_bytes > 23 * 4096 * 40
    check(path, 23, 4096)


def test_rows_of_any_size_reach_the_file_exactly(direct_dir):
    # N=1000: no row is a whole block; partial flushes every step start and end mid-block.
    path = direct_dir / "r.npz"
    with Recorder(path, 1000, segment_steps=4, flush_interval_s=1e-9) as rec:  # unknown length: grows
        for t in range(37):
            rec.record(**step(t, 1000))
    check(path, 37, 1000)


def test_a_recording_leaves_its_rows_out_of_the_page_cache(direct_dir, page_cache_bytes):
    path = direct_dir / "r.npz"
    n = 4096
    with Recorder(path, n, max_steps=60) as rec:
        for t in range(60):
            rec.record(obs=torch.full((n, 64), float(t)), act=torch.zeros(n, 4), rew=torch.zeros(n),
                       done=torch.zeros(n, dtype=torch.bool))
    assert os.path.getsize(path) > 60 * n * 64 * 4
    assert page_cache_bytes(path) < 1 << 20


def test_direct_io_required_or_declined(tmp_path, monkeypatch):
    monkeypatch.setattr(npz_stream, "open_direct", lambda fd, path: None)  # a file system that refuses it
    with Recorder(tmp_path / "auto.npz", 8) as rec:
        rec.record(**step(0, 8))
        assert rec._stream.direct is False  # fell back to buffered writes
    check(tmp_path / "auto.npz", 1, 8)
    rec = Recorder(tmp_path / "strict.npz", 8, direct_io=True)
    with pytest.raises(OSError, match="refuses direct I/O"):
        rec.record(**step(0, 8))
    assert not os.path.exists(tmp_path / "strict.npz.partial")
    monkeypatch.undo()
    with Recorder(tmp_path / "off.npz", 8, direct_io=False) as rec:
        rec.record(**step(0, 8))
        assert rec._stream.direct is False
    check(tmp_path / "off.npz", 1, 8)

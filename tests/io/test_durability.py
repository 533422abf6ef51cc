"""The order of writes, syncs and sidecar replacements that power-loss safety rests on."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import rollrec
from rollrec.engine import Recorder
from rollrec._npz import stream as npz_stream
from rollrec.io import partial as writer


@pytest.fixture
def events(monkeypatch):
    """Log of ("write", rows written) / ("copy",) / ("sync",) / ("sidecar", rows, offsets) / ("rename",).

    Rows count as written when the writes in flight have completed (`drain` returned), not when
    `append` queued them. Writes run on the writer thread and commits on the committer thread:
    the log interleaves them.
    """
    log: list[tuple] = []
    real_sync, real_replace, real_rename = npz_stream.fdatasync, npz_stream.replace_small_file, writer.os.replace
    real_drain, real_copy = npz_stream.NpzStreamWriter.drain, npz_stream.copy_range

    def drain(self):
        real_drain(self)
        rows = min(self.rows.values())
        if rows > max((e[1] for e in log if e[0] == "write"), default=0):
            log.append(("write", rows))

    def copy(*args, **kwargs):
        real_copy(*args, **kwargs)
        log.append(("copy",))

    def sync(fd):
        log.append(("sync",))
        real_sync(fd)

    def replace(path, data, **kwargs):
        doc = json.loads(data)
        log.append(("sidecar", doc["committed_rows"], tuple(m["data_offset"] for m in doc["members"])))
        real_replace(path, data, **kwargs)

    def rename(src, dst):
        log.append(("rename",))
        real_rename(src, dst)

    monkeypatch.setattr(npz_stream.NpzStreamWriter, "drain", drain)
    monkeypatch.setattr(npz_stream, "copy_range", copy)
    monkeypatch.setattr(npz_stream, "fdatasync", sync)
    monkeypatch.setattr(npz_stream, "replace_small_file", replace)
    monkeypatch.setattr(writer.os, "replace", rename)
    return log


def record(path, steps: int, **kwargs):
    with Recorder(path, 4, segment_steps=2, flush_interval_s=None, **kwargs) as rec:
        for t in range(steps):
            rec.record(obs=torch.full((4, 3), float(t)), act=torch.zeros(4, 1), rew=torch.zeros(4),
                       done=torch.zeros(4, dtype=torch.bool))


def test_rows_and_moves_reach_the_disk_before_the_sidecar_names_them(tmp_path, events):
    record(tmp_path / "r.npz", 70)  # 32 rows reserved: grows twice, then its holes are closed
    last_sync, offsets = -1, None
    for i, event in enumerate(events):
        if event[0] == "sync":
            last_sync = i
        elif event[0] == "sidecar":
            rows, moved = event[1], offsets is not None and event[2] != offsets
            # The rows it names were synced after they were written, and a switch to new places
            # after the copies into them (a commit naming the old places may race a copy: fine).
            needed = [j for j, e in enumerate(events[:i]) if (e[0] == "write" and e[1] <= rows) or (moved and e[0] == "copy")]
            assert not needed or max(needed) < last_sync, f"sidecar naming {rows} rows at {event[2]} before the bytes were synced"
            offsets = event[2]
    renames = [i for i, e in enumerate(events) if e == ("rename",)]  # the sidecar's, then the file's
    assert renames[-1] > max(i for i, e in enumerate(events) if e == ("sync",))
    assert len({e[2] for e in events if e[0] == "sidecar"}) >= 3  # the layout moved, and the sidecar followed
    with rollrec.load(tmp_path / "r.npz") as r:
        np.testing.assert_array_equal(np.asarray(r["obs"])[:, 0, 0], np.arange(70))


def test_durable_false_never_syncs_and_stays_recoverable(tmp_path, events):
    record(tmp_path / "fast.npz", 9, durable=False)
    assert ("sync",) not in events
    with rollrec.load(tmp_path / "fast.npz") as r:
        assert r.T == 9

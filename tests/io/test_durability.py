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

    Rows count as written when the writes in flight have completed (`drain` returned, or
    `wait_fence` for a fence taken when they were the rows appended), not when `append` queued
    them. Writes run on the writer thread, their completion is waited for on the completer
    thread and commits run on the committer thread: the log interleaves them.
    """
    log: list[tuple] = []
    real_sync, real_replace, real_rename = npz_stream.fdatasync, npz_stream.replace_small_file, writer.os.replace
    W = npz_stream.NpzStreamWriter
    real_drain, real_copy, real_fence, real_wait = W.drain, W._copy, W.fence, W.wait_fence
    fenced: dict[int, int] = {}  # fence -> rows appended when it was taken

    def wrote(rows):
        if rows > max((e[1] for e in log if e[0] == "write"), default=0):
            log.append(("write", rows))

    def drain(self):
        real_drain(self)
        wrote(min(self.rows.values()))

    def fence(self):
        f = real_fence(self)
        fenced[f] = min(self.rows.values())
        return f

    def wait_fence(self, f):
        real_wait(self, f)
        wrote(fenced[f])

    def copy(self, *args):
        real_copy(self, *args)
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

    monkeypatch.setattr(W, "drain", drain)
    monkeypatch.setattr(W, "fence", fence)
    monkeypatch.setattr(W, "wait_fence", wait_fence)
    monkeypatch.setattr(W, "_copy", copy)
    monkeypatch.setattr(npz_stream, "fdatasync", sync)
    monkeypatch.setattr(npz_stream, "replace_small_file", replace)
    monkeypatch.setattr(writer.os, "replace", rename)
    return log


def record(path, steps: int, **kwargs):
    with Recorder(path, 4, segment_steps=2, flush_interval_s=None, **kwargs) as rec:
        for t in range(steps):
            rec.record(obs=torch.full((4, 3), float(t)), act=torch.zeros(4, 1), rew=torch.zeros(4),
                       done=torch.zeros(4, dtype=torch.bool))


@pytest.mark.parametrize("room", ["grown", "reserved"])
def test_rows_and_moves_reach_the_disk_before_the_sidecar_names_them(tmp_path, events, monkeypatch, room):
    if room == "grown":  # no room past the first 32 rows (as where the file system cannot leave holes)
        monkeypatch.setattr(npz_stream, "_RESERVE_LIMIT", 0)
    record(tmp_path / "r.npz", 70)  # grown: 32 rows allocated, grows twice; then (both) its holes are closed
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
    # The layout moved (grown: twice, then down; reserved: down once), and the sidecar followed.
    assert len({e[2] for e in events if e[0] == "sidecar"}) >= (3 if room == "grown" else 2)
    with rollrec.load(tmp_path / "r.npz") as r:
        np.testing.assert_array_equal(np.asarray(r["obs"])[:, 0, 0], np.arange(70))


def test_durable_false_never_syncs_and_stays_recoverable(tmp_path, events):
    record(tmp_path / "fast.npz", 9, durable=False)
    assert ("sync",) not in events
    with rollrec.load(tmp_path / "fast.npz") as r:
        assert r.T == 9

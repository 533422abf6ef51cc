"""Sharding only happens with torch.distributed running more than one rank; otherwise nothing changes."""

from __future__ import annotations

import pytest
import torch
import torch.distributed as dist

import rollrec
from rollrec.engine.shards import agree


def _record(path, **kwargs):
    with rollrec.Recorder(path, 2, **kwargs) as rec:
        rec.record(obs=torch.zeros(2, 3), act=torch.zeros(2, 1), rew=torch.zeros(2), done=torch.zeros(2, dtype=torch.bool))
    return rec


def test_world_of_one_rank_writes_a_plain_file(tmp_path):
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        rec = _record(tmp_path / "run.npz")
        assert rec.close() == tmp_path / "run.npz" and (tmp_path / "run.npz").is_file()
        assert agree("name.npz") == "name.npz"
        with rollrec.load(tmp_path / "run.npz") as r:
            assert "shard" not in r.meta
    finally:
        dist.destroy_process_group()


def test_distributed_true_needs_several_ranks(tmp_path):
    with pytest.raises(ValueError, match="torch.distributed is not initialised with more than one rank"):
        _record(tmp_path / "run.npz", distributed=True)
    assert _record(tmp_path / "plain.npz", env_offset=4).close().is_file()  # no ranks: env_offset has no effect


class _Session:
    rank, closing, terminating = 0, False, False


def test_sigterm_waits_for_record_to_return_then_raises(monkeypatch, tmp_path):
    import signal
    import sys

    from rollrec.engine import shards

    session = _Session()
    monkeypatch.setattr(shards, "_ACTIVE", [session])
    later = []
    monkeypatch.setattr(shards.threading, "Timer", lambda delay, fn, args: later.append((delay, fn, args)) or _NoStart())
    frames = []
    real_start = rollrec.Recorder._start
    monkeypatch.setattr(rollrec.Recorder, "_start", lambda self, given: (frames.append(sys._getframe()), real_start(self, given))[1])
    _record(tmp_path / "x.npz", distributed=False)

    shards._on_sigterm(signal.SIGTERM, frames[0])  # the signal landed inside record(): deliver it again later
    assert session.terminating and later and later[0][2][1] == signal.SIGTERM
    with pytest.raises(shards.RankTerminated) as exc:  # outside record(): finish the shard on the way out
        shards._on_sigterm(signal.SIGTERM, sys._getframe())
    assert exc.value.code == 143
    session.closing = True  # inside close(): no exception, close() raises once the shard is finished
    shards._on_sigterm(signal.SIGTERM, sys._getframe())


class _NoStart:
    def start(self) -> None:
        pass

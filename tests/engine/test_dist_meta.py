"""The gloo side group of the recorder's exchanges (`rollrec.engine.dist_meta`), in one process.

``new_group`` is a collective: every rank must call it, the same number of times, in the same
order (torch names each group by a per-process counter). A rank that gave up on the side group
(a peer timed out or closed the connection) must therefore not create a new one alone: the
other ranks may still hold theirs, and its lone ``new_group`` would wait for them, then pair
with whatever group they create next (the user's own) (item 14 of issue 20).
"""

from __future__ import annotations

import datetime

import pytest
import torch.distributed as dist

from rollrec.engine import dist_meta


@pytest.fixture
def world_of_one(tmp_path, monkeypatch):
    store = dist.FileStore(str(tmp_path / "store"), 1)
    dist.init_process_group("gloo", store=store, rank=0, world_size=1, timeout=datetime.timedelta(seconds=30))
    monkeypatch.setattr(dist_meta, "_GROUP", None)
    monkeypatch.setattr(dist_meta, "_WORLD", None)
    monkeypatch.setattr(dist_meta, "_GAVE_UP", None)
    made = []
    real = dist.new_group

    def counting(*args, **kwargs):
        made.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(dist, "new_group", counting)
    yield made
    dist.destroy_process_group()


def test_the_group_is_made_once_and_reused(world_of_one):
    group = dist_meta.metadata_group(5.0)
    assert dist_meta.metadata_group(5.0) is group
    assert dist_meta.all_gather_json({"a": 1}, group, "test", timeout_s=5.0) == [{"a": 1}]
    assert len(world_of_one) == 1


def test_a_rank_that_gave_up_on_the_group_does_not_make_one_alone(world_of_one):
    group = dist_meta.metadata_group(5.0)
    dist_meta._abandon(group)  # as after a timed-out exchange
    with pytest.raises(dist_meta.ExchangeError, match=r"gave up.*every rank.*init_process_group"):
        dist_meta.metadata_group(5.0)
    assert len(world_of_one) == 1  # no lone new_group


def test_a_new_default_group_gets_a_new_side_group(world_of_one, tmp_path):
    group = dist_meta.metadata_group(5.0)
    dist_meta._abandon(group)
    dist.destroy_process_group()  # every rank starts torch.distributed anew
    dist.init_process_group("gloo", store=dist.FileStore(str(tmp_path / "store2"), 1), rank=0, world_size=1)
    assert dist_meta.metadata_group(5.0) is not None
    assert len(world_of_one) == 2

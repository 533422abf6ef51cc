"""The sidecar's word on where members lie while the writer removes the holes between them."""

from __future__ import annotations

import json

import pytest

from rollrec._npz import sidecar
from rollrec._npz.layout import MemberSpec, Placement
from rollrec.format.errors import RolloutFormatError

MEMBERS = [MemberSpec("obs", "<f4", (4,), 100), MemberSpec("rew", "<f4", (), 100), MemberSpec("done", "|b1", (), 100)]
PLACED = {"obs": Placement(0, 4096, 100), "rew": Placement(20_000, 20_480, 100), "done": Placement(40_000, 40_960, 100)}


def doc(collapse=None) -> dict:
    raw = sidecar.encode(data_path="run.npz.partial", align=4096, created=1.0, members=MEMBERS, placements=PLACED,
                         committed_rows=10, committed_crc={m.name: 0 for m in MEMBERS}, info_json="{}", collapse=collapse)


    return json.loads(raw)


def test_without_a_pending_collapse_the_placements_are_the_named_ones_whatever_the_size():
    state = sidecar.decode(doc(), "x.json")
    assert state.collapse_size is None
    assert state.placements_at(123) == PLACED


def test_the_file_size_says_how_many_ranges_are_gone_and_where_each_member_is():
    # the hole before "done" goes first (highest), then the one before "rew"; the second range
    # holds "rew"'s old local header, which maps to where the range was
    ranges = [(32_768, 4096), (8192, 12_288)]
    state = sidecar.decode(doc((50_000, ranges)), "x.json")
    assert state.placements_at(50_000) == PLACED
    one = state.placements_at(50_000 - 4096)
    assert one["obs"] == PLACED["obs"] and one["rew"] == PLACED["rew"]
    assert one["done"] == Placement(40_000 - 4096, 40_960 - 4096, 100)
    two = state.placements_at(50_000 - 4096 - 12_288)
    assert two["obs"] == PLACED["obs"]
    assert two["rew"] == Placement(8192, 20_480 - 12_288, 100)  # the header was inside the range
    assert two["done"] == Placement(40_000 - 4096 - 12_288, 40_960 - 4096 - 12_288, 100)
    assert state.placements_at(50_000 - 1) is None  # no stage of the plan: changed since


@pytest.mark.parametrize("bad", [{"size": 1}, {"size": 1, "ranges": [[0, 0]]}, {"size": 1, "ranges": [[-1, 4096]]}, [1]])
def test_a_damaged_plan_is_refused_in_one_line(bad):
    d = doc()
    d["collapse"] = bad
    with pytest.raises(RolloutFormatError, match="damaged sidecar"):
        sidecar.decode(d, "x.json")

"""The manifest of a sharded rollout: the env layout rules, the JSON document, its checks."""

from __future__ import annotations

import json

import pytest

from rollrec.format.errors import RolloutFormatError
from rollrec.format.manifest import MANIFEST_NAME, Manifest, ShardEntry, check_layout, rollout_dir
from rollrec.io.sharded.manifest import read_manifest, write_manifest


def test_layout_follows_rank_order_unless_offsets_are_given():
    assert check_layout([5, 2, 4], [None, None, None]) == [0, 5, 7]
    assert check_layout([5, 2, 4], [6, 4, 0]) == [6, 4, 0]


@pytest.mark.parametrize("counts, offsets, message", [
    ([5, 2, 4], [0, 3, 7], r"env ranges overlap: rank 1 has envs 3\.\.4, rank 0 has 0\.\.4"),
    ([5, 2, 4], [0, 6, 8], r"env ranges leave a gap: no rank has envs 5\.\.5 \(rank 1 starts at 6\)"),
    ([5, 2, 4], [1, 6, 8], r"no rank has envs 0\.\.0"),
    ([5, 2], [0, None], r"env_offset was passed on some ranks but not on ranks \[1\]"),
    ([5, 0], [None, None], r"rank 1: num_envs must be at least 1"),
    ([2, 2], [-2, 0], r"rank 0: env_offset must be >= 0"),
])
def test_bad_layouts_name_the_ranks(counts, offsets, message):
    with pytest.raises(ValueError, match=message):
        check_layout(counts, offsets)


def test_rollout_dir_drops_the_npz_suffix(tmp_path):
    assert rollout_dir(tmp_path / "run.npz") == tmp_path / "run"
    assert rollout_dir(tmp_path / "run") == tmp_path / "run"


def _manifest() -> Manifest:
    entries = [ShardEntry(0, "rank-00000.npz", 0, 3, 10, "complete", "a"), ShardEntry(1, "rank-00001.npz", 3, 2)]
    return Manifest(run_id="ab12", world_size=2, num_envs=5, dt=0.02, shards=entries, num_steps=10)


def test_round_trip_through_the_file(tmp_path):
    write_manifest(tmp_path, _manifest())
    assert [p.name for p in tmp_path.iterdir()] == [MANIFEST_NAME]  # no temporary file left behind
    doc = json.loads((tmp_path / MANIFEST_NAME).read_text())
    assert doc["format"] == "rollrec-sharded" and doc["format_version"] == 1
    assert doc["shards"][1] == {"rank": 1, "file": "rank-00001.npz", "env_offset": 3, "num_envs": 2, "num_steps": None,
                                "status": "recording", "host": None, "note": None}
    assert read_manifest(tmp_path).to_json() == doc


@pytest.mark.parametrize("change, message", [
    ({"format": "other"}, r"'format' must be 'rollrec-sharded'"),
    ({"format_version": 2}, r"unknown manifest version 2"),
    ({"world_size": 3}, r"'world_size' is 3 but 'shards' lists 2"),
    ({"num_envs": 6}, r"'num_envs' is 6 but the shards hold 5 envs"),
    ({"state": "done"}, r"'state' must be one of"),
    ({"run_id": 5}, r"'run_id' is missing or not a str"),
    ({"shards[1].file": "../x.npz"}, r"shards\[1\]: 'file' must be a plain relative path"),
    ({"shards[1].file": "/abs/x.npz"}, r"'file' must be a plain relative path"),
    ({"shards[1].file": "a/../../x.npz"}, r"'file' must be a plain relative path"),
    ({"shards[1].rank": 0}, r"shards\[1\]: shards must be in rank order"),
    ({"shards[1].env_offset": 2}, r"env ranges overlap"),
    ({"shards[1].status": "lost"}, r"'status' must be one of"),
])
def test_invalid_manifests_are_refused_naming_the_key(tmp_path, change, message):
    doc = _manifest().to_json()
    for key, value in change.items():
        if key.startswith("shards["):
            i, field = key[7], key.split(".", 1)[1]
            doc["shards"][int(i)][field] = value
        else:
            doc[key] = value
    (tmp_path / MANIFEST_NAME).write_text(json.dumps(doc))
    with pytest.raises(RolloutFormatError, match=message):
        read_manifest(tmp_path)


def test_missing_and_broken_manifests(tmp_path):
    with pytest.raises(FileNotFoundError, match="rollrec recover"):
        read_manifest(tmp_path)
    (tmp_path / MANIFEST_NAME).write_text("{not json")
    with pytest.raises(RolloutFormatError, match="not valid JSON"):
        read_manifest(tmp_path)

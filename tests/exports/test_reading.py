"""The exporters' reads: blocks within their memory budget give the rollout's values; camera frames
come from raw image members (camera streams, ``r.cameras`` / ``r.images``: test_camera_streams.py)."""

from __future__ import annotations

import numpy as np
import pytest

import rollrec
from rollrec.exports.cameras import cameras, read_frames
from rollrec.exports.reading import BlockReader, row_bytes
from rollrec.exports.selection import select_episodes

from .conftest import smooth_frames


@pytest.mark.parametrize("budget", [None, 4096, 700, 1])
def test_blocks_give_each_episode_its_rows_within_the_budget(tmp_path, make_fields, budget):
    fields = make_fields(50, 7, L=3, done_every=13)
    path = rollrec.save(tmp_path / "r.npz", fields, dt=0.02)
    keys = ["obs", "act", "link_quat", "done"]
    with rollrec.load(path) as r:
        sel = select_episodes(r, envs=[0, 2, 3, 6])
        reader = BlockReader(r, keys, sel.envs, budget=budget)
        per_step = sum(row_bytes(r, k)[2] for k in keys)
        for ep in sel.episodes:
            got = {k: [] for k in keys}
            for _t, rows in reader.chunks(ep):
                held = sum(v.nbytes for v in reader._data.values())
                assert budget is None or held <= max(budget, per_step), "a block over its budget"
                for k in keys:
                    got[k].append(np.array(rows[k]))
            for k in keys:
                np.testing.assert_array_equal(np.concatenate(got[k]), fields[k][ep.row_start : ep.row_stop, ep.env])


def test_raw_image_members_are_cameras(tmp_path, make_fields):
    fields = make_fields(12, 2, extras={"heat": ((4, 4), np.float32)})
    fields["front"] = smooth_frames(12, 2, H=8, W=10)
    path = rollrec.save(tmp_path / "r.npz", fields, dt=0.02)
    with rollrec.load(path) as r:
        (cam,) = cameras(r)  # the float extra is no camera
        assert (cam.name, cam.shape, cam.member, cam.is_rgb) == ("front", (8, 10, 3), "front", True)
        np.testing.assert_array_equal(read_frames(r, cam, 1, (3, 9)), fields["front"][3:9, 1])


def test_rollrec_export_stays_the_function_once_the_package_is_imported():
    import rollrec.exports.to_lerobot  # importing a submodule sets attributes on its parents

    assert rollrec.export is rollrec.exports.export and callable(rollrec.export)

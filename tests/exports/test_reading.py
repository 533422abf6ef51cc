"""The exporters' reads: blocks within their memory budget give the rollout's values; camera frames
come from raw image members, or from a rollout's camera streams (``r.cameras``, ``r.images``)."""

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


class _StreamFrames:
    """One env's frames of a camera stream, as ``rollrec/io/images.py`` ``CameraFrames`` (branch
    issue-26) gives them: ``at(step)`` is the frame of a kept row."""

    def __init__(self, frames: np.ndarray):
        self._frames = frames
        self.steps = np.arange(len(frames))

    def at(self, step: int) -> np.ndarray:
        return self._frames[step].copy()


class _Spec:
    """A camera's ``StreamSpec`` (``rollrec/format/images.py``, branch issue-26): shape, dtype, codec."""

    def __init__(self, shape, dtype):
        self.shape, self.dtype, self.codec = list(shape), np.dtype(dtype).name, "zstd"


class _WithCameras:
    """A rollout with the camera issue's reads (``r.cameras``, ``r.images(camera, env)``): the
    frames given, decoded by the double above."""

    def __init__(self, r, frames: dict[str, np.ndarray]):
        self._r, self._frames = r, frames

    def __getattr__(self, name):
        return getattr(self._r, name)

    def __getitem__(self, key):
        return self._r[key]

    def __contains__(self, key):
        return key in self._r

    @property
    def cameras(self):
        return {name: _Spec(f.shape[2:], f.dtype) for name, f in self._frames.items()}

    def images(self, camera, env):
        return _StreamFrames(self._frames[camera][:, env])


def test_camera_streams_are_read_by_step(tmp_path, make_fields):
    fields = make_fields(10, 3, done_every=4)
    path = rollrec.save(tmp_path / "r.npz", fields, dt=0.02)
    rgb, depth = smooth_frames(10, 3, H=8, W=12), np.random.default_rng(1).random((10, 3, 8, 12)).astype(np.float32)
    with rollrec.load(path) as plain:
        r = _WithCameras(plain, {"front": rgb, "wrist_depth": depth})
        front, wrist = cameras(r)
        assert (front.member, front.is_rgb, wrist.is_rgb, wrist.shape) == (None, True, False, (8, 12))
        np.testing.assert_array_equal(read_frames(r, front, 2, (1, 7)), rgb[1:7, 2])
        np.testing.assert_array_equal(read_frames(r, wrist, 0, (0, 10)), depth[:, 0])
        pytest.importorskip("h5py")
        from rollrec.exports.api import export

        out = export(r, tmp_path / "d.hdf5", to="robomimic")
        import h5py

        with h5py.File(out) as f:
            g = f["data/demo_1"]
            env, start, stop = g.attrs["env"], g.attrs["start"], g.attrs["stop"]
            np.testing.assert_array_equal(g["obs/front_image"][()], rgb[start:stop, env])
            np.testing.assert_array_equal(g["obs/wrist_depth"][()], depth[start:stop, env])


def test_rollrec_export_stays_the_function_once_the_package_is_imported():
    import rollrec.exports.to_lerobot  # importing a submodule sets attributes on its parents

    assert rollrec.export is rollrec.exports.export and callable(rollrec.export)

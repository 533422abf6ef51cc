"""The replay's camera panel without a browser: the composed picture is the recorded frames of the
selected env at the current frame, depth drawn with one colour scale, and an env without frames says why."""

from __future__ import annotations

import numpy as np
import pytest

import rollrec
from rollrec.media.colormap import DepthRange, depth_colors, kind_of, label_colors, picture
from rollrec.viewer.cameras import GAP, CameraPanel
from rollrec.viewer.cameras_gui import WIDTH

from .conftest import camera_colors, local_app, rerecord, synthetic_walkers

pytest.importorskip("av")
pytest.importorskip("zstandard")


@pytest.fixture(scope="module")
def camera_file(tmp_path_factory):
    d = tmp_path_factory.mktemp("cameras")
    src = synthetic_walkers(d / "whole.npz", num_envs=6, steps=80)
    return rerecord(src, d / "cams.npz", cameras=True, envs=[1, 4])


def front_of(picture_: np.ndarray) -> np.ndarray:
    return picture_[:, :32]


def test_the_panel_shows_the_selected_envs_frames_at_the_frame(camera_file):
    with rollrec.load(camera_file) as r:
        panel = CameraPanel(r)
        assert panel.enabled and list(panel.specs) == ["depth", "front"]  # meta order
        panel.set_env(4)
        for t in (0, 17, 63, 79):
            image, caption = panel.show(t)
            assert image.shape == (24, 32 + GAP + 32, 3)
            depth_tile, front_tile = image[:, :32], image[:, 32 + GAP :]
            np.testing.assert_allclose(front_tile.reshape(-1, 3).mean(0), camera_colors(t, [4])[0], atol=3)
            want = depth_colors(r.images("depth", 4)[t], panel._scales["depth"])
            np.testing.assert_array_equal(depth_tile, want)
            assert "**front**" in caption and "**depth**" in caption and "depth, 1" in caption


def test_depth_keeps_one_colour_scale_per_env(camera_file):
    with rollrec.load(camera_file) as r:
        panel = CameraPanel(r)
        panel.set_env(1)
        scale = panel._scales["depth"]
        assert 1000 <= scale.near < scale.far <= 1000 + 10 * 79 + 31
        first, last = panel.show(0)[0][:, :32], panel.show(79)[0][:, :32]
        assert not np.array_equal(first, last)  # the ramp moved on the same scale


def test_an_env_without_frames_says_why(camera_file):
    with rollrec.load(camera_file) as r:
        panel = CameraPanel(r)
        panel.set_env(2)
        image, caption = panel.show(10)
        assert image is None and "detail envs only: 1, 4" in caption


def test_the_app_updates_the_panel_with_the_frame_and_the_env(camera_file):
    with local_app(camera_file, env=1) as app:
        assert app.cameras is not None
        right = slice(round((32 + GAP) * WIDTH / 66) + 2, None)  # the front tile, scaled to the panel's width
        for t in (5, 50, 33):
            app.seek(t)
            assert app.cameras.image.image.shape[1] == WIDTH
            np.testing.assert_allclose(app.cameras.image.image[:, right].reshape(-1, 3).mean(0),
                                       camera_colors(t, [1])[0], atol=3)
        app.select_env(4)
        np.testing.assert_allclose(app.cameras.image.image[:, right].reshape(-1, 3).mean(0),
                                   camera_colors(33, [4])[0], atol=3)
        app.select_env(0)
        assert app.cameras.image.visible is False and "detail envs only" in app.cameras.caption.content


def test_a_file_without_cameras_has_no_panel(tmp_path):
    path = synthetic_walkers(tmp_path / "plain.npz", num_envs=2, steps=10)
    with local_app(path) as app:
        assert app.cameras is None and app.gui.cameras_folder is None


def test_pictures_of_each_kind():
    assert kind_of("front", (4, 4, 3), np.uint8) == "rgb" and kind_of("depth", (4, 4), np.uint16) == "depth"
    assert kind_of("seg", (4, 4), np.uint8) == "labels" and kind_of("ids", (4, 4), np.int32) == "labels"
    assert kind_of("far", (4, 4), np.float32) == "depth" and kind_of("ir", (4, 4, 1), np.uint8) == "gray"
    depth = np.array([[0, 1000], [2000, np.nan]], np.float32)
    rgb = picture(depth, "depth", DepthRange(1000, 2000))
    assert (rgb[0, 0] == 0).all() and (rgb[1, 1] == 0).all()  # no return: black
    assert rgb[0, 1, 2] > rgb[0, 1, 0] and rgb[1, 0, 0] > rgb[1, 0, 2]  # near blue, far red
    labels = label_colors(np.array([[0, 1], [2, 1]]))
    assert (labels[0, 0] == 0).all() and (labels[0, 1] == labels[1, 1]).all() and not (labels[0, 1] == labels[1, 0]).all()

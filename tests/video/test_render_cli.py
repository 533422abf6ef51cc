"""``rollrec video`` formats and env arguments: GIF output, a clear error for other extensions,
reversed ranges, and env -1 meaning the last env as in the Python API."""

from __future__ import annotations

import numpy as np
import pytest

import rollrec
from rollrec.cli import main
from rollrec.video import render_frames, render_rollout
from rollrec.video.scene import scenes_for


def test_gif_output_is_a_gif_of_the_rendered_frames(walker_file, tmp_path, gif_frames):
    out = tmp_path / "walk.gif"
    assert main(["video", str(walker_file), "--env", "2", "-o", str(out), "--size", "160x120", "--stop", "6",
                 "--quiet"]) == 0
    assert out.read_bytes()[:6] == b"GIF89a"
    frames = gif_frames(out)
    assert frames.shape == (6, 120, 160, 3)
    with rollrec.load(walker_file) as r:
        expected = np.stack(list(render_frames(scenes_for(r, [2], "follow", 0, 6), (160, 120))))
        other = np.stack(list(render_frames(scenes_for(r, [0], "follow", 0, 6), (160, 120))))
    err = np.abs(frames.astype(int) - expected).mean()
    assert err < 3.0, f"GIF differs from the rendered frames by {err:.1f} per channel"  # palette rounding only
    assert err < np.abs(frames.astype(int) - other).mean()  # and it is env 2, not another env
    assert not list(tmp_path.glob("*.partial*"))


def test_other_extensions_get_an_error_naming_the_formats(walker_file, tmp_path, capsys):
    out = tmp_path / "walk.webm"
    assert main(["video", str(walker_file), "-o", str(out), "--stop", "3"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.endswith("rollrec video writes .mp4, .mov, .mkv, .gif files (chosen by the extension of -o); got '.webm'")
    assert "\n" not in err and not list(tmp_path.iterdir())


def test_reversed_env_range_says_so(walker_file, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["video", str(walker_file), "--envs", "3-1"])
    assert exc.value.code == 2
    assert "env range 3-1 is reversed; write 1-3" in capsys.readouterr().err


def test_env_minus_one_is_the_last_env_in_the_api_and_the_cli(walker_file, tmp_path):
    with rollrec.load(walker_file) as r:
        last = r.N - 1
        for key, value in r.env(-1).items():
            np.testing.assert_array_equal(value, r.env(last)[key])
    api = render_rollout(walker_file, tmp_path / "api.mp4", env=-1, size=(160, 120), stop=4, progress=False)
    ref = render_rollout(walker_file, tmp_path / "ref.mp4", env=last, size=(160, 120), stop=4, progress=False)
    assert main(["video", str(walker_file), "--env", "-1", "-o", str(tmp_path / "cli.mp4"), "--size", "160x120",
                 "--stop", "4", "--quiet"]) == 0
    assert api.read_bytes() == ref.read_bytes() == (tmp_path / "cli.mp4").read_bytes()
    with pytest.raises(ValueError, match=r"env -5 out of range.*-4..-1 from the end"):
        render_rollout(walker_file, tmp_path / "x.mp4", env=-5, progress=False)


def test_render_rollout_writes_a_gif_for_a_gif_path(walker_file, tmp_path, gif_frames):
    """The library maps ``.gif`` as the CLI does (ffmpeg's gif muxer failed on the mp4 defaults)."""
    out = render_rollout(walker_file, tmp_path / "x.gif", env=1, size=(64, 48), stop=4, progress=False)
    assert out.read_bytes()[:6] == b"GIF89a"
    assert gif_frames(out).shape == (4, 48, 64, 3)

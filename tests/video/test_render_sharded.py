"""`rollrec video` on a sharded rollout: the same pictures as from one file; a missing env refused."""

from __future__ import annotations

import numpy as np
import pytest

import rollrec
from rollrec.cli import main
from rollrec.io.sharded.rollout import MissingEnvsError, MissingEnvsWarning
from rollrec.video import render_rollout
from rollrec.video.scene import scenes_for


@pytest.fixture
def sharded_walker(walker_file, tmp_path, write_sharded):
    """The walker recording (4 envs) split into shards of 1 and 3 envs; shard 0 optionally missing."""
    with rollrec.load(walker_file) as whole:
        fields = {k: np.asarray(whole[k]) for k in whole}
        meta = {"link_parents": whole.meta["link_parents"]}

    def make(missing=()):
        return write_sharded(tmp_path / "run", fields, (1, 3), missing=missing, dt=whole.dt, meta=meta)

    return make


def test_frames_of_a_sharded_rollout_match_one_file(walker_file, sharded_walker, tmp_path):
    run = sharded_walker()
    with rollrec.load(run) as sharded, rollrec.load(walker_file) as whole:
        a, b = scenes_for(sharded, [2], "follow", 0, 10)[0], scenes_for(whole, [2], "follow", 0, 10)[0]
        for t in (0, 5, 9):
            np.testing.assert_array_equal(a.frame(t, (160, 120)), b.frame(t, (160, 120)))
    out = render_rollout(run, tmp_path / "env2.mp4", env=2, stop=6, size=(64, 48), progress=False)
    assert out.stat().st_size > 0


def test_a_missing_env_is_refused_before_rendering(sharded_walker, tmp_path, capsys):
    run = sharded_walker(missing=(0,))
    with pytest.warns(MissingEnvsWarning), pytest.raises(MissingEnvsError, match="env 0 is missing"):
        render_rollout(run, tmp_path / "env0.mp4", env=0, progress=False)
    assert not (tmp_path / "env0.mp4").exists()
    with pytest.warns(MissingEnvsWarning):
        assert main(["video", str(run), "--env", "0", "-o", str(tmp_path / "x.mp4")]) == 1
    assert "env 0 is missing: it was recorded by rank 0" in capsys.readouterr().err

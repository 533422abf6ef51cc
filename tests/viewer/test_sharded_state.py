"""The replay model on a sharded rollout with a missing shard: best/worst pick among the present envs."""

from __future__ import annotations

import numpy as np
import pytest

import rollrec
from rollrec.io.sharded.rollout import MissingEnvsError, MissingEnvsWarning
from rollrec.viewer.state import ReplayState


def test_best_and_worst_skip_a_missing_shard(tmp_path, make_fields, write_sharded):
    fields = make_fields(10, 6, seed=2)
    fields["rew"] = np.tile(np.array([3, 0, 5, 1, 9, 9], np.float32), (10, 1))  # env 4, 5 best: in the missing shard
    write_sharded(tmp_path / "run", fields, (2, 2, 2), missing=(2,))
    with pytest.warns(MissingEnvsWarning):
        r = rollrec.load(tmp_path / "run")
    with r:
        state = ReplayState(r, env=0)
        assert state.best_env() == 2 and state.worst_env() == 1
        assert state.select_env(3) == 3
        np.testing.assert_array_equal(state.data.base_pos, fields["base_pos"][:, 3])
        with pytest.raises(MissingEnvsError, match="env 5 is missing"):
            state.select_env(5)
        assert state.env == 3

"""What grows with a recording in progress, without a browser: the overview (over the new rows
only) and the selected env's trajectory, each compared with what is computed from scratch."""

from __future__ import annotations

import numpy as np
import pytest

import rollrec
from rollrec.viewer.live.growth import extend_env
from rollrec.viewer.overview.episodes import compute_overview
from rollrec.viewer.overview.growing import GrowingOverview
from rollrec.viewer.state import read_env

from .conftest import synthetic_walkers


class Prefix:
    """The first ``T`` steps of a rollout, as a recording that has committed that many."""

    def __init__(self, r, T: int):
        self._r, self.T = r, T

    def read(self, key, steps=None, envs=None):
        t0, t1 = (0, self.T) if steps is None else steps
        assert t1 <= self.T, "read past the committed steps"
        return self._r.read(key, (t0, t1), envs)

    def env(self, env, keys=None):
        return {k: v[: self.T] for k, v in self._r.env(env, keys).items()}

    def __getattr__(self, name):
        return getattr(self._r, name)

    def __contains__(self, key):
        return key in self._r


@pytest.fixture(scope="module")
def walkers(tmp_path_factory):
    path = synthetic_walkers(tmp_path_factory.mktemp("growth") / "w.npz", num_envs=37, steps=400, fall_rate=0.03)
    with rollrec.load(path) as r:
        yield r


def _same_overview(a, b):
    for name in ("env", "episode", "start", "stop", "ended", "worst_term"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    for name in ("ret", "worst_value", "env_totals"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=1e-9, atol=1e-9, err_msg=name)
    assert (a.num_steps, a.num_envs, a.term_names) == (b.num_steps, b.num_envs, b.term_names)


@pytest.mark.parametrize("block_elements", [1 << 23, 64])  # one block of envs, or a block per env
def test_the_overview_grows_over_new_rows_to_what_computing_it_from_scratch_gives(walkers, block_elements):
    growing = GrowingOverview(Prefix(walkers, 0), block_elements=block_elements)
    for T in (1, 2, 60, 61, 177, 300, 400):
        growing.rollout = Prefix(walkers, T)
        _same_overview(growing.extend(T), compute_overview(walkers, steps=T))
    with pytest.raises(ValueError, match="grows"):
        growing.extend(10)


def test_the_overview_reads_only_the_new_rows(walkers):
    growing = GrowingOverview(Prefix(walkers, 100))
    growing.extend(100)
    reads = []
    prefix = Prefix(walkers, 130)
    real = prefix.read
    prefix.read = lambda key, steps=None, envs=None: reads.append((key, steps)) or real(key, steps, envs)
    growing.rollout = prefix
    growing.extend(130)
    assert reads and all(steps == (100, 130) for _, steps in reads)


def test_an_env_grows_to_what_reading_it_whole_gives(walkers):
    for env in (0, 5, 36):
        data = read_env(Prefix(walkers, 1), env)
        for T in (2, 59, 60, 61, 200, 400):
            data = extend_env(Prefix(walkers, T), data, T)
            want = read_env(walkers, env, T)
            for name in ("base_pos", "base_quat", "rew", "rew_terms", "link_pos", "link_quat", "episodes", "episode_of"):
                np.testing.assert_array_equal(getattr(data, name), getattr(want, name), err_msg=f"{name} T={T}")
            np.testing.assert_allclose(data.return_so_far, want.return_so_far, rtol=1e-12, atol=1e-9)
    assert extend_env(Prefix(walkers, 400), data, 400) is data

"""The viewer's model on format-v2 files (``envs=``, ``capture=``, ``every=``), against the same
rollout recorded whole (v1): the overview from the episode index, one env's data, what the
readouts say each env holds, the detail-env navigation and the plottable fields."""

from __future__ import annotations

import numpy as np
import pytest

import rollrec
from rollrec.viewer.fields import channel_groups
from rollrec.viewer.overview import compute_env_totals, compute_overview
from rollrec.viewer.state import ReplayState, read_env

from .conftest import rerecord, synthetic_walkers

DETAIL = [3, 10]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("volume_viewer")
    src = synthetic_walkers(d / "whole.npz", num_envs=16, steps=240, fall_rate=0.006)
    return {
        "whole": src,
        "envs": rerecord(src, d / "envs.npz", envs=DETAIL),
        "capture": rerecord(src, d / "capture.npz", capture="terminated", window=20),
        "every": rerecord(src, d / "every.npz", every=4),
    }


def _sorted_rows(ov):
    order = np.lexsort((ov.start, ov.env))
    return {k: np.asarray(getattr(ov, k))[order] for k in ("env", "episode", "start", "stop", "ret", "ended",
                                                            "worst_term", "worst_value")}, order


@pytest.mark.parametrize("kind", ["envs", "capture"])
def test_overview_from_the_index_matches_the_whole_file(files, kind):
    with rollrec.load(files["whole"]) as whole, rollrec.load(files[kind]) as r:
        want, _ = _sorted_rows(compute_overview(whole))
        ov = compute_overview(r)
        got, order = _sorted_rows(ov)
        for k in ("env", "episode", "start", "stop", "ended", "worst_term"):
            np.testing.assert_array_equal(got[k], want[k], err_msg=k)
        np.testing.assert_allclose(got["ret"], want["ret"], rtol=1e-6, atol=1e-5)
        np.testing.assert_allclose(got["worst_value"], want["worst_value"], rtol=1e-5, atol=1e-4)
        np.testing.assert_allclose(ov.env_totals, compute_env_totals(whole), rtol=1e-6, atol=1e-4)
        detail = ov.detail[order]
        if kind == "envs":  # the detail envs' episodes, and only theirs
            np.testing.assert_array_equal(detail, np.isin(got["env"], DETAIL))
        else:  # the captured episodes are the terminated ones
            assert detail.any() and not detail.all()
            np.testing.assert_array_equal(detail, got["ended"] == 1)
    with rollrec.load(files["whole"]) as whole:
        assert compute_overview(whole).detail is None  # a v1 file: no Detail column


def test_overview_of_an_every_file_counts_rows_and_keeps_exact_returns(files):
    with rollrec.load(files["whole"]) as whole, rollrec.load(files["every"]) as r:
        want, _ = _sorted_rows(compute_overview(whole))
        got, _ = _sorted_rows(compute_overview(r))
        assert r.T == whole.T // 4 and r.dt == pytest.approx(4 * whole.dt)
        # every episode holding the first step of a row is listed, its rows those of its steps
        kept = -(-want["start"] // 4) <= (want["stop"] - 1) // 4
        np.testing.assert_array_equal(got["env"], want["env"][kept])
        np.testing.assert_array_equal(got["start"], -(-want["start"][kept] // 4))
        np.testing.assert_array_equal(got["stop"], (want["stop"][kept] - 1) // 4 + 1)
        np.testing.assert_allclose(got["ret"], want["ret"][kept], rtol=1e-6, atol=1e-5)  # exact, not folded


def test_a_light_env_reads_its_base_pose_and_nan_where_nothing_was_kept(files):
    with rollrec.load(files["whole"]) as whole, rollrec.load(files["envs"]) as r:
        light, full = read_env(r, 4), read_env(whole, 4)
        np.testing.assert_array_equal(light.base_pos, full.base_pos)
        np.testing.assert_array_equal(light.episodes, full.episodes)
        np.testing.assert_allclose(light.return_so_far, full.return_so_far, rtol=1e-6, atol=1e-5)
        assert np.isnan(light.link_pos).all() and not light.detail.any()
        heavy = read_env(r, 10)
        np.testing.assert_array_equal(heavy.link_pos, read_env(whole, 10).link_pos)
        assert heavy.detail.all()
        assert read_env(whole, 4).detail is None


def test_readouts_say_what_each_env_holds(files):
    with rollrec.load(files["envs"]) as r:
        s = ReplayState(r, env=4)
        assert s.detail_summary() == "every field for 2 of 16 envs (3, 10), light fields for the others"
        assert s.detail_status().startswith("light fields only (rew, done, truncated, base_pos, base_quat, rew_terms")
        assert s.next_detail_env() == 10
        s.select_env(10)
        assert s.detail_status() == "◆ detail env: every field"
        assert s.next_detail_env() == 3  # wraps around
    with rollrec.load(files["capture"]) as r:
        s = ReplayState(r, env=0)
        assert "for the last 20 steps of" in s.detail_summary() and "capture: terminated" in s.detail_summary()
        captured = [e for e in r.episodes() if e["captured"]]
        e = next(c for c in captured if c["window_start"] > c["start"])  # longer than its window
        s.select_env(e["env"])
        s.clock.seek(e["stop"] - 1)
        assert s.detail_status().startswith("◆ every field (captured episode, frames ")
        assert np.isfinite(s.data.link_pos[e["stop"] - 1]).all()
        s.clock.seek(e["window_start"] - 1)  # its own steps before the window
        assert s.detail_status().startswith("light fields here")
        never = sorted(set(range(r.N)) - {c["env"] for c in captured})
        if never:
            s.select_env(never[0])
            assert s.detail_status().endswith("no episode of this env was captured")
    with rollrec.load(files["whole"]) as r:
        s = ReplayState(r, env=0)
        assert s.detail_summary() == "" and s.detail_status() == ""
    with rollrec.load(files["every"]) as r:
        assert ReplayState(r).detail_summary() == "1 step in 4 kept"


def test_the_episode_index_is_not_a_plottable_field(files):
    with rollrec.load(files["envs"]) as r:
        groups = channel_groups(r)
        assert "episodes" not in groups and "episode_return" not in groups
        assert "obs" in groups  # a detail member: plotted for the detail envs (NaN for the others)

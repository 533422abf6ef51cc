"""Files written before format v2 still load, whole, through every v2 reader path.

``data/v1_walker.npz`` was written by rollrec at main c974826 (format v1, before volume control):
``RolloutRecorder(WalkerEnv(2, seed=1, max_episode_steps=15), max_steps=40).run(GaitPolicy(), ...)``.
A file of the original recorder (written by ``tests/conftest.py::write_legacy_rollout``) is read too.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

import rollrec
from rollrec.cli import main
from rollrec.viewer.overview import compute_overview

V1_FILE = Path(__file__).parent / "data" / "v1_walker.npz"


def test_a_v1_file_reads_as_before():
    with np.load(V1_FILE, allow_pickle=False) as z:
        plain = {k: z[k] for k in z.files}
    meta = json.loads(str(plain["meta"]))
    assert meta["format_version"] == 1 and "episodes" not in plain
    with rollrec.load(V1_FILE) as r:
        assert (r.T, r.N, r.every, r.dt) == (40, 2, 1, 0.02)
        assert not r.layout.has_index and r.layout.env_ids == {} and r.layout.window_members == ()
        for key in r.step_keys:  # every member holds every env, as stored
            assert r.kind(key) == "all"
            np.testing.assert_array_equal(np.asarray(r[key]), plain[key])
        for env in range(r.N):
            assert r.has_detail(env)
            for key, value in r.env(env).items():
                np.testing.assert_array_equal(value, plain[key][:, env])
        np.testing.assert_array_equal(r.detail_envs, [0, 1])


def test_a_v1_file_has_its_episodes_derived_from_done():
    with np.load(V1_FILE, allow_pickle=False) as z:
        done, truncated, rew = z["done"], z["truncated"], z["rew"].astype(np.float64)
    want = []  # one env and one step at a time: (env, start, stop, end, return)
    for env in range(done.shape[1]):
        start = 0
        for t in range(done.shape[0]):
            if done[t, env] or t == done.shape[0] - 1:
                end = ("truncated" if truncated[t, env] else "terminated") if done[t, env] else "unfinished"
                want.append((env, start, t + 1, end, rew[start : t + 1, env].sum()))
                start = t + 1
    assert len(want) > 2 * done.shape[1]  # several episodes per env, some unfinished
    with rollrec.load(V1_FILE) as r:
        got = sorted((e["env"], e["start"], e["stop"], e["end"], e["return"]) for e in r.episodes())
        assert [g[:4] for g in got] == [w[:4] for w in want]
        np.testing.assert_allclose([g[4] for g in got], [w[4] for w in want], rtol=0, atol=1e-9)
        assert all(e["captured"] for e in r.episodes())
        np.testing.assert_array_equal(r.episode_bounds(1), [w[1:3] for w in want if w[0] == 1])
        first = r.episodes()[0]
        np.testing.assert_array_equal(r.episode(0)["base_pos"],
                                      np.asarray(r["base_pos"])[first["start"] : first["stop"], first["env"]])
        assert compute_overview(r).detail is None  # the viewer's table: no Detail column


def test_info_on_a_v1_file(capsys):
    assert main(["info", str(V1_FILE), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["format_version"] == 1 and (info["T"], info["N"]) == (40, 2)


def test_a_file_of_the_original_recorder_still_converts(legacy_dir):
    with rollrec.load(legacy_dir / "legacy_rollout_n2.npz", allow_pickle=True) as r:
        assert r.meta["legacy"] and not r.layout.has_index
        eps = r.episodes()
        assert next((e["env"], e["start"], e["stop"]) for e in eps if e["env"] == 0) == (0, 0, 60)  # ends after step 59

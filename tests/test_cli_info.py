"""``rollrec info``: what it prints for a rollout, as text and as JSON, and how it fails."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import rollrec
from rollrec.cli import main
from rollrec.io import summary


def _info(capsys, *argv) -> tuple[int, str, str]:
    code = main(["info", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def _finished_returns(r) -> list[float]:
    """Reference: returns of the episodes that ended with done, env by env, via `Rollout`."""
    done = np.asarray(r["done"])
    out = []
    for n in range(r.N):
        for (start, stop), ret in zip(r.episode_bounds(n), r.episode_returns(n)):
            if stop > start and done[stop - 1, n]:
                out.append(ret)
    return out


@pytest.mark.slow
def test_text_summary_of_a_walker_rollout(capsys, walker_rollout):
    code, out, err = _info(capsys, walker_rollout)
    assert code == 0 and err == ""
    assert f"{walker_rollout}: format v1" in out
    assert "rollrec-walker" in out
    assert "T=100" in out and "N=8" in out and "dt=0.02 s" in out
    assert "stored, memory-mapped" in out
    lines = out.splitlines()
    obs_line = next(line for line in lines if line.split()[:1] == ["obs"])
    assert "[100, 8, 256]" in obs_line and "float32" in obs_line and "819.20 kB" in obs_line
    for field in ("act", "rew", "done", "truncated", "base_pos", "base_quat", "rew_terms", "link_pos", "link_quat"):
        assert any(line.split()[:1] == [field] for line in lines), field
    with rollrec.load(walker_rollout) as r:
        done = int(np.asarray(r["done"]).sum())
        returns = _finished_returns(r)
        terms = np.asarray(r["rew_terms"]).mean(axis=(0, 1))
    assert f"done      {done} (" in out
    assert f"mean {np.mean(returns):.4g}  min {np.min(returns):.4g}  max {np.max(returns):.4g}" in out
    assert any(line.split() == ["forward_vel", f"{terms[0]:.4g}"] for line in lines)


@pytest.mark.slow
def test_json_summary_has_the_same_figures(capsys, walker_rollout):
    code, out, _ = _info(capsys, walker_rollout, "--json")
    assert code == 0
    s = json.loads(out)
    with rollrec.load(walker_rollout) as r:
        rew = np.asarray(r["rew"], dtype=np.float64)
        returns = _finished_returns(r)
        assert (s["T"], s["N"], s["dt"], s["env_name"]) == (r.T, r.N, r.dt, r.env_name)
        assert s["format_version"] == 1 and s["legacy"] is False
        assert s["storage"] == {
            "compression": "stored",
            "memory_mapped": True,
            "data_bytes": sum(int(np.asarray(r[k]).nbytes) for k in r.keys()),  # noqa: SIM118
            "file_bytes": walker_rollout.stat().st_size,
            "disk_bytes": walker_rollout.stat().st_blocks * 512,
        }
        assert set(s["fields"]) == set(r.keys())
        assert s["fields"]["link_quat"] == {
            "shape": [100, 8, 13, 4], "dtype": "float32", "bytes": 100 * 8 * 13 * 4 * 4,
            "stored_bytes": s["fields"]["link_quat"]["stored_bytes"],
        }
        assert s["fields"]["done"]["dtype"] == "bool"
        e = s["episodes"]
        assert e["done"] == int(np.asarray(r["done"]).sum())
        assert e["truncated"] == int(np.asarray(r["truncated"]).sum())
        assert e["finished_envs"] == int(np.asarray(r["done"]).any(axis=0).sum())
        assert e["mean_return"] == pytest.approx(np.mean(returns))
        assert (e["min_return"], e["max_return"]) == pytest.approx((min(returns), max(returns)))
        rw = s["reward"]
        assert (rw["mean"], rw["min"], rw["max"]) == pytest.approx((rew.mean(), rew.min(), rew.max()))
        assert list(rw["term_means"]) == r.reward_term_names
        assert list(rw["term_means"].values()) == pytest.approx(np.asarray(r["rew_terms"], np.float64).mean((0, 1)))
        assert s["meta"]["link_parents"] == r.meta["link_parents"]


DONE = np.zeros((6, 4), bool)
DONE[[1, 3], 0] = True
DONE[5, 1] = True
DONE[[0, 5], 3] = True


@pytest.mark.parametrize("block", [1 << 23, 1, 7], ids=["one-block", "env-per-block", "odd-blocks"])
def test_episode_returns_on_a_hand_made_pattern(monkeypatch, block):
    monkeypatch.setattr(summary, "_BLOCK_ELEMENTS", block)
    rew = np.arange(6)[:, None] * 10.0 + np.arange(4)[None, :]  # rew[t, n] = 10t + n
    truncated = np.zeros_like(DONE)
    truncated[5, 1] = True
    stats = summary.episode_stats(rew.astype(np.float32), DONE, truncated)
    # finished: env 0 [0,2) 10, [2,4) 50; env 1 [0,6) 156; env 3 [0,1) 3, [1,6) 165. Env 2 and tails: unfinished.
    expected = [10.0, 50.0, 156.0, 3.0, 165.0]
    assert stats["done"] == 5 and stats["truncated"] == 1 and stats["finished_envs"] == 3
    assert stats["mean_return"] == pytest.approx(np.mean(expected))
    assert (stats["min_return"], stats["max_return"]) == (3.0, 165.0)


def test_no_finished_episode(capsys, tmp_path, make_fields):
    fields = make_fields(5, 2)
    fields["done"] = np.zeros((5, 2), bool)
    fields["truncated"] = np.zeros((5, 2), bool)
    path = rollrec.save(tmp_path / "r.npz", fields, dt=0.1)
    code, out, _ = _info(capsys, path, "--json")
    e = json.loads(out)["episodes"]
    assert code == 0 and e["done"] == 0 and e["mean_return"] is None and e["min_return"] is None
    code, out, _ = _info(capsys, path)
    assert "no episode finished" in out


def test_compressed_file(capsys, tmp_path, make_fields):
    fields = make_fields(50, 4)
    fields["obs"] = np.zeros_like(fields["obs"])
    path = rollrec.save(tmp_path / "c.npz", fields, dt=0.1, compress=True)
    code, out, _ = _info(capsys, path, "--json")
    s = json.loads(out)
    assert code == 0
    assert s["storage"]["compression"] == "deflated" and s["storage"]["memory_mapped"] is False
    assert s["fields"]["obs"]["stored_bytes"] < s["fields"]["obs"]["bytes"] / 10
    code, out, _ = _info(capsys, path)
    assert "deflated" in out and "in file)" in out


def test_legacy_file_needs_the_opt_in(capsys, legacy_dir):
    path = legacy_dir / "legacy_rollout_n2.npz"
    code, out, err = _info(capsys, path)
    assert code == 1
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("rollrec info: error: ") and "--allow-pickle" in err
    code, out, err = _info(capsys, path, "--allow-pickle")
    assert code == 0 and err == ""
    assert "legacy file (converted)" in out and "means over envs" in out
    code, out, _ = _info(capsys, path, "--allow-pickle", "--json")
    s = json.loads(out)
    assert s["legacy"] is True and s["reward"]["terms_are_env_means"] is True
    assert s["episodes"]["done"] == 2  # both envs end an episode after step 59


@pytest.mark.parametrize("name, message", [("missing.npz", "no such file"), ("bad.npz", "not a zip archive")])
def test_bad_files_fail_with_one_line(capsys, tmp_path, name, message):
    (tmp_path / "bad.npz").write_text("not a zip")
    code, out, err = _info(capsys, tmp_path / name)
    assert code == 1 and out == ""
    assert len(err.strip().splitlines()) == 1 and message in err


def test_a_file_with_holes_reports_its_size_and_its_disk_use(tmp_path, capsys, monkeypatch):
    # 30 of 20,000 reserved steps: the members stay in place and the unused capacity is given back.
    import torch

    from rollrec.engine import Recorder
    from rollrec._npz import stream as npz_stream

    path = tmp_path / "sparse.npz"
    monkeypatch.setattr(npz_stream, "_COMPACT_MIN_HOLES", 1 << 40)  # keep the holes: no compact copy...
    monkeypatch.setattr(npz_stream, "collapse_range", lambda fd, offset, length: False)  # ... as without COLLAPSE_RANGE
    with Recorder(path, 64, max_steps=20_000) as rec:
        for t in range(30):
            rec.record(obs=torch.full((64, 16), float(t)), act=torch.zeros(64, 4), rew=torch.zeros(64),
                       done=torch.zeros(64, dtype=torch.bool))
    st = path.stat()
    if st.st_blocks * 512 > st.st_size / 2:
        pytest.skip("this file system does not punch holes")
    assert main(["info", str(path), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)["storage"]
    assert s["file_bytes"] == st.st_size > 5e6 and s["disk_bytes"] == st.st_blocks * 512 < 1e6
    assert main(["info", str(path)]) == 0
    assert "on disk: the rest are holes" in capsys.readouterr().out


def test_a_file_with_volume_control_says_what_it_kept(capsys, tmp_path, volume_reference):
    expected_file, make_steps = volume_reference
    steps = make_steps(40, 12, seed=2, burst=(17,))
    path = tmp_path / "v.npz"
    with rollrec.Recorder(path, 12, every=4, envs=[2, 7], dtypes={"obs": np.float16}, dt=0.01) as rec:
        for s in steps:
            rec.record(**s)
    expected = expected_file(steps, 12, every=4, envs=[2, 7], dtypes={"obs": torch.float16})
    code, out, _ = _info(capsys, path)
    assert code == 0 and f"{path}: format v2" in out
    assert "1 step in 4 of 40 recorded steps kept" in out and "dt=0.04 s" in out
    assert "2 of 12 envs keep act, contact, link_pos, link_quat, obs" in out
    assert "dtypes    obs float16" in out
    obs_line = next(line for line in out.splitlines() if line.split()[:1] == ["obs"])
    assert "[10, 2, 6]" in obs_line and "float16" in obs_line and "(detail envs)" in obs_line
    finished = expected["episodes"][:, 3] != 0
    code, out, _ = _info(capsys, path, "--json")
    doc = json.loads(out)
    assert doc["volume"]["detail"]["envs"] == 2 and doc["volume"]["every"] == 4
    assert doc["episodes"]["done"] == int(finished.sum())  # every episode, exact, from the index
    assert doc["episodes"]["mean_return"] == pytest.approx(expected["episode_return"][finished].mean())
    assert doc["fields"]["obs"]["kept"] == "detail" and "kept" not in doc["fields"]["rew"]


def test_a_trigger_file_counts_its_captured_episodes(capsys, tmp_path, volume_reference):
    _, make_steps = volume_reference
    path = tmp_path / "t.npz"
    with rollrec.Recorder(path, 6, capture="terminated", window=3, all_env_fields=("rew", "done")) as rec:
        for s in make_steps(30, 6, seed=4):
            rec.record(**s)
    with rollrec.load(path) as r:
        captured = sum(e["captured"] for e in r.episodes())
        total = len(r.episodes())
        rows = r.stored("obs").shape[0]
    _, out, _ = _info(capsys, path)
    assert f"captured  {captured} of {total} episodes (terminated): their last 3 steps keep" in out
    assert f"({rows} rows)" in out and "every env keeps rew, done" in out


def test_verify_says_how_many_members_it_checked(capsys, tmp_path, make_fields):
    import zipfile

    for compress in (False, True):
        path = rollrec.save(tmp_path / f"v{compress}.npz", make_fields(20, 3, L=2), dt=0.1, compress=compress)
        members = len(zipfile.ZipFile(path).namelist())
        code, out, err = _info(capsys, path, "--verify")
        assert code == 0 and err == ""
        assert out.rstrip().splitlines()[-1] == f"verified  CRC-32 of {members} members: all match"
        code, out, _ = _info(capsys, path, "--verify", "--json")
        assert json.loads(out)["verified_members"] == members
        code, out, _ = _info(capsys, path)
        assert "verified" not in out  # said only when checked

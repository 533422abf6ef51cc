"""One rollout recorded by 3 ranks under ``torchrun`` (gloo, CPU), read back through `load`,
``env(g)`` and ``rollrec info``; and the faults: a rank SIGKILLed mid-recording, a rank that
exits without closing, a rank that never closes. The ranks run `sharded_worker.py`."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import rollrec
from rollrec.cli import main
from rollrec.io.partial import RecordingBusyError
from rollrec.io.sharded.manifest import read_manifest
from rollrec.io.sharded.rollout import MissingEnvsError, MissingEnvsWarning

# slow: every test starts torchrun with 2-3 ranks (the shared run of `ok_run` alone took 24 s on 2 loaded cores)
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(sys.platform == "win32", reason="torchrun with gloo, POSIX signals")]

WORKER = Path(__file__).with_name("sharded_worker.py")
COUNTS, T = (5, 2, 4), 13
N = sum(COUNTS)


def torchrun_command(out: Path, scenario: str, ranks: int = 3, **env_vars: str) -> dict:
    """``subprocess`` arguments that run the worker's ``scenario`` on ``ranks`` ranks in ``out``."""
    # gloo on the loopback interface: CI containers need not resolve their own host name
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore::UserWarning", GLOO_SOCKET_IFNAME="lo", **env_vars)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(ranks),
           str(WORKER), ".", scenario]  # paths relative to out
    return {"args": cmd, "env": env, "cwd": out, "text": True}


def results_of(out: Path) -> dict[tuple[str, int], dict]:
    results = {}
    for path in sorted(out.glob("results-*.jsonl")):
        for line in path.read_text().splitlines():
            doc = json.loads(line)
            results[(doc["case"], doc["rank"])] = doc
    return results


def torchrun(out: Path, scenario: str, timeout: float = 120) -> tuple[int, dict[tuple[str, int], dict], str]:
    """Run the worker on 3 ranks; returns (exit code, {(case, rank): printed result}, stderr)."""
    proc = subprocess.run(**torchrun_command(out, scenario), check=False, capture_output=True, timeout=timeout)
    return proc.returncode, results_of(out), proc.stderr


def expected(key: str, t: np.ndarray, g: np.ndarray) -> np.ndarray:
    """What the worker recorded for ``key`` at steps ``t`` and global envs ``g`` (broadcast)."""
    t, g = np.broadcast_arrays(t, g)
    return {
        "obs": np.stack([g, t, 1000 * g + t], -1).astype(np.float32),
        "rew": (g + t / 100).astype(np.float32),
        "env_id": g.astype(np.int64),
        "done": (g + t) % 5 == 4,
        "rew_terms": np.stack([g, t], -1).astype(np.float32),
    }[key]


def grid(steps: int, envs) -> tuple[np.ndarray, np.ndarray]:
    return np.arange(steps)[:, None], np.asarray(envs)[None, :]


@pytest.fixture(scope="module")
def ok_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ok")
    code, results, err = torchrun(out, "ok")
    assert code == 0, err[-3000:]
    return out, results


def test_every_rank_gets_the_directory_and_writes_its_shard(ok_run):
    out, results = ok_run
    for rank in range(3):
        assert results[("rank-order", rank)]["result"] == "run"  # run.npz names the directory run/
        assert results[("rank-order", rank)]["shard"] == f"run/rank-{rank:05d}.npz"
    assert sorted(p.name for p in (out / "run").iterdir()) == [
        "manifest.json", "rank-00000.npz", "rank-00001.npz", "rank-00002.npz"]
    m = read_manifest(out / "run")
    assert (m.state, m.world_size, m.num_envs, m.num_steps, m.dt) == ("complete", 3, N, T, 0.05)
    assert [(e.env_offset, e.num_envs, e.num_steps, e.status) for e in m.shards] == [
        (0, 5, T, "complete"), (5, 2, T, "complete"), (7, 4, T, "complete")]
    assert m.fields["env_id"] == {"dtype": "<i8", "shape": []} and m.fields["obs"]["shape"] == [3]
    for rank in range(3):  # each shard is an ordinary v1 file of its rank's envs
        with np.load(out / "run" / f"rank-{rank:05d}.npz", allow_pickle=False) as z:
            assert z["obs"].shape == (T, COUNTS[rank], 3)
            assert json.loads(str(z["meta"]))["shard"]["env_offset"] == sum(COUNTS[:rank])


def test_load_reads_one_env_axis_in_rank_order(ok_run):
    out, _ = ok_run
    with rollrec.load(out / "run") as r:
        assert (r.T, r.N, r.dt, r.env_name) == (T, N, 0.05, "sharded-test")
        assert r.reward_term_names == ["g", "t"] and r.missing_envs == []
        for key in ("obs", "rew", "env_id", "done", "rew_terms"):
            np.testing.assert_array_equal(np.asarray(r[key]), expected(key, *grid(T, range(N))), err_msg=key)
        obs = r["obs"]
        np.testing.assert_array_equal(obs[3:9, 2:9], expected("obs", *grid(T, range(2, 9)))[3:9])  # spans 3 shards
        np.testing.assert_array_equal(obs[-1, ::3, 0], np.arange(0, N, 3))
        np.testing.assert_array_equal(obs[:, [10, 0, 6], 2], expected("obs", *grid(T, [10, 0, 6]))[..., 2])
        inside = obs[:, 1:4]  # inside one shard: read from that shard's file with pread (issue 25)
        assert type(inside) is np.ndarray
        np.testing.assert_array_equal(inside, expected("obs", *grid(T, range(1, 4))))
        for g in range(N):
            e = r.env(g)
            np.testing.assert_array_equal(e["obs"], expected("obs", np.arange(T), g))
            np.testing.assert_array_equal(e["env_id"], np.full(T, g))
        ends = np.flatnonzero(expected("done", np.arange(T), 8)) + 1
        np.testing.assert_array_equal(r.episode_bounds(8)[:, 1], np.append(ends, T) if ends[-1] != T else ends)
        np.testing.assert_allclose(r.total_rewards(), expected("rew", *grid(T, range(N))).sum(0, dtype=np.float64))
    with rollrec.load(out / "run.npz") as r:  # the name the ranks were given opens the directory too
        assert r.N == N


def test_info_summarises_the_sharded_rollout(ok_run, capsys):
    out, _ = ok_run
    assert main(["info", str(out / "run"), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert (s["T"], s["N"]) == (T, N) and s["fields"]["obs"]["shape"] == [T, N, 3]
    assert [x["envs"] for x in s["shards"]["shards"]] == [[0, 5], [5, 7], [7, 11]]
    rew = expected("rew", *grid(T, range(N))).astype(np.float64)
    assert s["reward"]["mean"] == pytest.approx(rew.mean())
    assert s["episodes"]["done"] == int(expected("done", *grid(T, range(N))).sum())
    assert main(["info", str(out / "run")]) == 0
    text = capsys.readouterr().out
    assert "3 shards" in text and "rank 1   envs 5..6" in text and "[13, 11, 3]" in text


def test_env_offset_places_shards_anywhere(ok_run):
    out, results = ok_run
    assert {results[("reversed", r)]["result"] for r in range(3)} == {"reversed"}
    assert [e.env_offset for e in read_manifest(out / "reversed").shards] == [6, 4, 0]
    with rollrec.load(out / "reversed") as r:
        np.testing.assert_array_equal(np.asarray(r["env_id"]), expected("env_id", *grid(T, range(N))))
        assert r.shard_of(0).entry.rank == 2 and r.shard_of(10).entry.rank == 0


def test_overlapping_env_offsets_are_refused_on_every_rank(ok_run):
    out, results = ok_run
    errors = {results[("overlap", r)]["error"] for r in range(3)}
    assert errors == {"env ranges overlap: rank 1 has envs 3..4, rank 0 has 0..4"}
    assert not (out / "overlap").exists()


def test_dtypes_and_fields_work_sharded_and_the_other_volume_options_are_refused(ok_run):
    out, results = ok_run
    assert {results[("volume", r)]["result"] for r in range(3)} == {"volume"}
    with rollrec.load(out / "volume") as r:
        assert r.meta["format_version"] == 2 and r.N == N and "act" not in r and "env_id" not in r
        assert r["obs"].dtype == np.float16
        np.testing.assert_array_equal(r["obs"][:, :], expected("obs", *grid(T, range(N))).astype(np.float16))
        np.testing.assert_array_equal(r.env(7)["rew_terms"], expected("rew_terms", *grid(T, [7]))[:, 0])
    for rank in range(3):
        assert "not supported for a recording sharded across torch.distributed ranks" in results[("every", rank)]["error"]


def test_rollout_recorder_ranks_agree_on_one_directory(ok_run):
    out, results = ok_run
    paths = {results[("rollout-recorder", r)]["result"] for r in range(3)}
    assert len(paths) == 1
    path = out / paths.pop()
    assert path.parent.name == "walker" and path.suffix == "" and path.name.startswith("rollrec-walker_")
    with rollrec.load(path) as r:
        assert (r.N, r.T) == (N, 6) and r.has_links


def test_distributed_false_writes_a_plain_file_on_one_rank(ok_run):
    out, results = ok_run
    assert results[("alone", 0)]["result"] == "alone.npz" and ("alone", 1) not in results
    with rollrec.load(out / "alone.npz") as r:
        assert r.N == 5 and "shard" not in r.meta


def test_a_killed_rank_leaves_the_others_complete_and_recover_finishes_it(tmp_path, capsys):
    code, _, err = torchrun(tmp_path, "kill")
    assert code != 0 and "rank 0 got SIGTERM: finishing its shard" in err
    run = tmp_path / "run"
    assert (run / "rank-00002.npz.partial").exists() and not (run / "rank-00002.npz").exists()
    steps = []
    for rank in (0, 1):  # the survivors finished their files when torchrun sent SIGTERM
        with rollrec.load(run / f"rank-{rank:05d}.npz") as shard:
            assert shard.meta["interrupted"] == "RankTerminated"
            offset = sum(COUNTS[:rank])
            np.testing.assert_array_equal(shard["obs"], expected("obs", *grid(shard.T, range(offset, offset + COUNTS[rank]))))
            steps.append(shard.T)
    with pytest.warns(MissingEnvsWarning, match=r"envs 7\.\.10 \(rank 2, rank-00002\.npz\) are missing.*rollrec recover"):
        r = rollrec.load(run)
    with r:
        assert r.N == N and max(steps) == r.T and r.missing_envs == [(7, 11)]
        assert np.isnan(r["obs"][:, 7:]).all() and (r["env_id"][0, 7:] == np.iinfo(np.int64).min).all()
        assert not r["done"][:, 7:].any()
        np.testing.assert_array_equal(r["obs"][: steps[1], 5:7], expected("obs", *grid(steps[1], [5, 6])))
        assert np.isnan(r["obs"][steps[1] :, 5:7]).all()  # past the end of a shorter shard
        with pytest.raises(MissingEnvsError, match=r"env 8 is missing: it was recorded by rank 2 \(envs 7\.\.10"):
            r.env(8)
    assert main(["info", str(run)]) == 0
    assert "envs missing: 7..10" in capsys.readouterr().out

    assert main(["recover", str(run)]) == 0
    assert "rank 2    envs 7..10       recovered  8 steps" in capsys.readouterr().out
    m = read_manifest(run)
    assert m.state == "incomplete" and [e.status for e in m.shards] == ["complete", "complete", "recovered"]
    with pytest.warns(MissingEnvsWarning, match=r"envs 7\.\.10 \(rank 2\) hold 8 of"):
        r = rollrec.load(run)
    with r:
        assert r.missing_envs == []
        e = r.env(8)
        np.testing.assert_array_equal(e["obs"][:8], expected("obs", np.arange(8), 8))
        assert np.isnan(e["obs"][8:]).all()


@pytest.mark.parametrize("scenario, reason", [("exit", "connection closed by peer"), ("hang", "timed out")])
def test_close_does_not_wait_for_a_rank_that_never_closes(tmp_path, scenario, reason):
    code, results, err = torchrun(tmp_path, scenario)
    assert code == 0, err[-3000:]
    for rank in (0, 1):
        res = results[("exit", rank)]
        assert res["result"] == "run"
        assert res["seconds"] < (10 if scenario == "exit" else 5)  # the exit run allows 60 s, the hang run 1 s
        assert any(reason in w.lower() and "rollrec recover" in w for w in res["warnings"]), res["warnings"]
    m = read_manifest(tmp_path / "run")
    assert m.state == "incomplete" and [e.status for e in m.shards] == ["complete", "complete", "missing"]
    assert "did not finish the close-time gather" in m.shards[2].note
    with pytest.warns(MissingEnvsWarning, match=r"envs 7\.\.10"):
        rollrec.load(tmp_path / "run").close()
    rollrec.recover(tmp_path / "run")  # rank 2 flushed 3 segments of 4 steps before it stopped
    assert [(e.status, e.num_steps) for e in read_manifest(tmp_path / "run").shards][2] == ("recovered", 12)


@pytest.mark.parametrize("direct", [True, False], ids=["direct", "buffered"])
def test_two_live_ranks_are_never_recovered_and_every_reader_names_them(tmp_path, capsys, request, direct):
    """2 ranks recording now: `load`, ``info`` and ``recover`` of the directory name both live
    shards (pid and host) and touch nothing; a Recorder with ``overwrite=True`` on a shard is
    refused; once the ranks stop, the rollout is complete and holds exactly what they recorded."""
    if direct:
        request.getfixturevalue("direct_dir")  # skipped where the file system refuses O_DIRECT
    proc = subprocess.Popen(**torchrun_command(tmp_path, "live", ranks=2, ROLLREC_TEST_DIRECT="1" if direct else "0"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    run = tmp_path / "run"
    try:
        deadline = time.monotonic() + 90
        while not all((tmp_path / f"ready-{r}").exists() for r in (0, 1)):
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1][-3000:]
            time.sleep(0.05)
        manifest = (run / "manifest.json").read_bytes()
        busy = r"rank-00000\.npz .*being recorded \(pid \d+ on host .*rank-00001\.npz .*being recorded \(pid \d+"
        with pytest.raises(RecordingBusyError, match=busy):
            rollrec.load(run)
        assert main(["info", str(run)]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "being recorded (pid" in err and "recover" not in err
        assert main(["recover", str(run)]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and re.search(busy, err) and "internal error" not in err
        with pytest.raises(RecordingBusyError, match="being recorded"):
            rollrec.Recorder(run / "rank-00000.npz", COUNTS[0], overwrite=True, distributed=False)
        assert (run / "manifest.json").read_bytes() == manifest  # the live ranks' manifest is theirs
        # the leases, and a sidecar the live rank may be replacing right now (its atomic .tmp) are the ranks' own
        assert sorted(p.name for p in run.iterdir() if not p.name.endswith((".lock", ".partial.json.tmp"))) == [
            "manifest.json", "rank-00000.npz.partial", "rank-00000.npz.partial.json",
            "rank-00001.npz.partial", "rank-00001.npz.partial.json"]
        (tmp_path / "stop").touch()
        _, err = proc.communicate(timeout=90)
        assert proc.returncode == 0, err[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    results = results_of(tmp_path)
    steps = results[("live", 0)]["steps"]
    assert results[("live", 1)]["steps"] == steps and steps >= 25
    m = read_manifest(run)
    assert m.state == "complete" and [e.status for e in m.shards] == ["complete", "complete"]
    with rollrec.load(run) as r:
        assert steps == r.T and COUNTS[0] + COUNTS[1] == r.N
        r.verify()
        for key in ("obs", "env_id", "done", "rew_terms"):
            np.testing.assert_array_equal(r[key], expected(key, *grid(steps, range(r.N))))
        np.testing.assert_allclose(r["rew"], expected("rew", *grid(steps, range(r.N))), rtol=0, atol=1e-6)  # f32 sums
    assert sorted(p.name for p in run.iterdir()) == ["manifest.json", "rank-00000.npz", "rank-00001.npz"]

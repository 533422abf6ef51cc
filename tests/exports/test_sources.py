"""Every kind of rollout exports: sharded directories as one file, format v2 files (envs kept in
detail, captured windows) with the rows that hold every field; and an export never leaves a half
result: temporary names, existing outputs, errors that name what is wrong."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import rollrec
from rollrec.engine import Recorder

h5py = pytest.importorskip("h5py")
pq = pytest.importorskip("pyarrow.parquet")


def _h5(path) -> dict[str, np.ndarray]:
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda n, o: out.__setitem__(n, o[()]) if isinstance(o, h5py.Dataset) else None)
        for n, g in f["data"].items():
            out.update({f"{n}@{k}": v for k, v in g.attrs.items()})
    return out


def test_a_sharded_rollout_exports_as_the_single_file_does(tmp_path, make_fields, write_sharded):
    fields = make_fields(30, 5, L=2, done_every=11)
    single = rollrec.save(tmp_path / "one.npz", fields, dt=0.02)
    run = write_sharded(tmp_path / "run", fields, (2, 3), dt=0.02)
    a = _h5(rollrec.export(single, tmp_path / "a.hdf5", to="robomimic"))
    b = _h5(rollrec.export(run, tmp_path / "b.hdf5", to="robomimic"))
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    la = pq.read_table(rollrec.export(single, tmp_path / "la", to="lerobot") / "data/chunk-000/file-000.parquet")
    lb = pq.read_table(rollrec.export(run, tmp_path / "lb", to="lerobot") / "data/chunk-000/file-000.parquet")
    assert la.equals(lb)


def _record(path, fields, N, **volume):
    with Recorder(path, N, dt=0.02, segment_steps=4, **volume) as rec:
        for t in range(fields["obs"].shape[0]):
            terms = {name: fields["rew_terms"][t, :, k] for k, name in enumerate(fields["rew_term_names"])}
            rec.record(**{k: fields[k][t] for k in ("obs", "act", "rew", "done", "truncated", "base_pos", "base_quat")},
                       reward_terms=terms)
    return path


def test_detail_envs_export_whole_episodes_and_the_others_are_counted(tmp_path, make_fields, reference):
    fields = make_fields(30, 4, done_every=9)
    ref = reference(rollrec.save(tmp_path / "ref.npz", fields, dt=0.02))
    path = _record(tmp_path / "v2.npz", fields, 4, envs=[1, 3])
    notes = []
    out = rollrec.export(path, tmp_path / "d.hdf5", to="robomimic", note=notes.append)
    expected = ref.of(envs=[1, 3])
    assert notes == [f"left out {len(ref.of(envs=[0, 2]))} episode(s) whose rows do not hold every exported field "
                     "(kept for some envs or in captured windows only)"]
    with h5py.File(out) as f:
        assert len(f["data"]) == len(expected)
        for i, (env, start, stop, *_ ) in enumerate(expected):
            g = f[f"data/demo_{i}"]
            assert (g.attrs["env"], g.attrs["start"], g.attrs["stop"]) == (env, start, stop)
            np.testing.assert_array_equal(g["obs/flat"][()], fields["obs"][start:stop, env])
            np.testing.assert_array_equal(g["actions"][()], fields["act"][start:stop, env])
    # the rerun export reads only what every env keeps: every env's episodes
    rr = pytest.importorskip("rerun")
    rrd = rollrec.export(path, tmp_path / "all.rrd", to="rerun", envs=[0])
    pytest.importorskip("datafusion")
    table = rr.chunk.RrdReader(str(rrd)).stream().collect().reader(index="step").to_arrow_table()
    assert table.column("/envs/0/reward/total:Scalars:scalars").null_count == 0


def test_captured_windows_export_their_rows(tmp_path, make_fields, reference):
    fields = make_fields(40, 3, done_every=12)
    fields["truncated"][:] = False  # every ended episode is terminated
    ref = reference(rollrec.save(tmp_path / "ref.npz", fields, dt=0.02))
    path = _record(tmp_path / "w.npz", fields, 3, capture="terminated", window=5)
    out = rollrec.export(path, tmp_path / "ds", to="lerobot", cameras=[])
    episodes = pq.read_table(out / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    data = pq.read_table(out / "data/chunk-000/file-000.parquet")
    expected = ref.of(end="terminated")
    assert [(e["rollrec/env"], e["rollrec/start"], e["rollrec/stop"]) for e in episodes] == [e[:3] for e in expected]
    for ep, (env, start, stop, *_ ) in zip(episodes, expected):
        assert ep["length"] == min(5, stop - start) and ep["rollrec/first_row"] == stop - ep["length"]
        rows = data.slice(ep["dataset_from_index"], ep["length"])
        np.testing.assert_array_equal(np.stack(rows["observation.state"].to_numpy(zero_copy_only=False)),
                                      fields["obs"][stop - ep["length"] : stop, env])


def test_the_output_appears_only_when_complete(tmp_path, make_fields, monkeypatch):
    path = rollrec.save(tmp_path / "r.npz", make_fields(20, 3, done_every=7), dt=0.02)
    from rollrec.exports import to_lerobot

    def fail(*args, **kwargs):
        assert list(tmp_path.glob(".ds.partial-*")), "written under a temporary name"
        raise RuntimeError("disk gone")

    monkeypatch.setattr(to_lerobot, "_tasks_table", fail)
    with pytest.raises(RuntimeError, match="disk gone"):
        rollrec.export(path, tmp_path / "ds", to="lerobot")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.npz"]  # neither the output nor the temporary


def test_an_existing_output_is_kept_unless_overwrite(tmp_path, make_fields):
    path = rollrec.save(tmp_path / "r.npz", make_fields(20, 3, done_every=7), dt=0.02)
    (tmp_path / "d.hdf5").write_bytes(b"precious")
    with pytest.raises(FileExistsError, match=r"d.hdf5: already exists \(pass --overwrite"):
        rollrec.export(path, tmp_path / "d.hdf5", to="robomimic")
    assert (tmp_path / "d.hdf5").read_bytes() == b"precious"
    rollrec.export(path, tmp_path / "d.hdf5", to="robomimic", overwrite=True)
    with h5py.File(tmp_path / "d.hdf5") as f:
        assert "data" in f
    rollrec.export(path, tmp_path / "ds", to="lerobot")
    rollrec.export(path, tmp_path / "ds", to="lerobot", overwrite=True, episodes="truncated")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.hdf5", "ds", "r.npz"]


def test_a_missing_package_names_the_extra(tmp_path, make_fields, monkeypatch):
    path = rollrec.save(tmp_path / "r.npz", make_fields(8, 2), dt=0.02)
    monkeypatch.setitem(sys.modules, "h5py", None)  # what Python does for a package that is not installed
    from rollrec.exports.deps import MissingExtraError

    with pytest.raises(MissingExtraError, match=r"--to robomimic needs h5py .*: pip install 'rollrec\[hdf5\]'"):
        rollrec.export(path, tmp_path / "d.hdf5", to="robomimic")
    assert not list(tmp_path.glob("*.hdf5")) and not list(tmp_path.glob(".d.hdf5*"))
    cli = subprocess.run([sys.executable, "-c", "import sys; sys.modules['pyarrow'] = None; from rollrec.cli import main; "
                          f"sys.exit(main(['export', {str(path)!r}, '--to', 'lerobot', {str(tmp_path / 'ds')!r}]))"],
                         capture_output=True, text=True, timeout=120)
    assert cli.returncode == 1
    assert cli.stderr.strip().splitlines() == [
        "rollrec export: error: rollrec export --to lerobot needs pyarrow (import of pyarrow halted; None in "
        "sys.modules): pip install 'rollrec[lerobot]'"]


def test_the_command_line(tmp_path, make_fields):
    path = rollrec.save(tmp_path / "r.npz", make_fields(20, 3, done_every=7), dt=0.02, env_name="cli")

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "rollrec", "export", str(path), *args], capture_output=True,
                              text=True, timeout=120)

    ok = cli("--to", "lerobot", str(tmp_path / "ds"), "--task", "walk", "--envs", "0,2", "--episodes", "truncated")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == str(tmp_path / "ds")
    info = json.loads((tmp_path / "ds" / "meta" / "info.json").read_text())
    episodes = pq.read_table(tmp_path / "ds/meta/episodes/chunk-000/file-000.parquet").to_pylist()
    assert {e["rollrec/env"] for e in episodes} <= {0, 2} and {e["rollrec/end"] for e in episodes} == {"truncated"}
    assert info["total_episodes"] == len(episodes) and episodes[0]["tasks"] == ["walk"]
    again = cli("--to", "lerobot", str(tmp_path / "ds"))
    assert again.returncode == 1 and again.stderr.count("\n") == 1 and "already exists" in again.stderr
    bad_env = cli("--to", "robomimic", str(tmp_path / "d.hdf5"), "--envs", "7")
    assert bad_env.returncode == 1 and "env 7 out of range: r.npz has 3 envs (0..2)" in bad_env.stderr
    none = cli("--to", "robomimic", str(tmp_path / "d.hdf5"), "--min-return", "1e9")
    assert none.returncode == 1 and "no episode matches" in none.stderr and none.stderr.count("\n") == 1
    fps = cli("--to", "lerobot", str(tmp_path / "x"), "--fps", "12.5")
    assert fps.returncode == 1 and "fps must be a positive integer" in fps.stderr
    cam = cli("--to", "lerobot", str(tmp_path / "y"), "--cameras", "wrist")
    assert cam.returncode == 1 and "r.npz has no camera 'wrist' (cameras: none)" in cam.stderr

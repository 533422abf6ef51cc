"""Damaged and hostile files: one `RolloutFormatError` line naming the file, never a traceback,
hang, crash, blow-up or code execution. Each test builds its file from a real small rollout."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import numpy as np
import pytest

import rollrec
from rollrec.io import LegacyPickleError, RolloutFormatError
from rollrec.cli import main
from rollrec.cli.info import summarize

REPO = Path(__file__).resolve().parents[2]


def _cli_fails_cleanly(capsys, path: Path, *extra: str, command: str = "info") -> str:
    """Run ``rollrec COMMAND path``; it must exit 1 with one line on stderr naming the file."""
    code = main([command, str(path), *extra])
    out, err = capsys.readouterr()
    assert code == 1, (code, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"rollrec {command}: error: ") and str(path) in lines[0], err
    return lines[0]


def _touch_everything(path: Path) -> None:
    """What the fuzz test does with a file: open, read every member, one env, the summary."""
    with rollrec.load(path) as r:
        for key in r:
            np.asarray(r[key]).tobytes()
        if r.N:
            r.env(0)
            r.env(r.N - 1)
    summarize(path, verify=True)


@pytest.fixture
def stored(tmp_path, make_fields) -> Path:
    return rollrec.save(tmp_path / "stored.npz", make_fields(8, 3, L=2), dt=0.02)


@pytest.fixture
def deflated(tmp_path, make_fields) -> Path:
    return rollrec.save(tmp_path / "deflated.npz", make_fields(8, 3, L=2), dt=0.02, compress=True)


# ---- CRC ------------------------------------------------------------------------------------
def test_crc_mismatch_in_a_stored_member_is_found_by_verify(stored, craft, capsys):
    e = craft.entries(stored)["obs.npy"]
    raw = stored.read_bytes()
    craft.patch(stored, e["data"] + 200, bytes([raw[e["data"] + 200] ^ 0x10]))
    # Opening stays lazy (nothing is read, nothing checked); verify reads it all.
    with rollrec.load(stored) as r, pytest.raises(RolloutFormatError, match=r"member 'obs' fails its CRC-32 check.*damaged"):
        r.verify()
    assert main(["info", str(stored)]) == 0
    capsys.readouterr()
    line = _cli_fails_cleanly(capsys, stored, "--verify")
    assert "'obs' fails its CRC-32 check" in line


def test_verify_passes_on_intact_files(stored, deflated, capsys):
    for path in (stored, deflated):
        assert main(["info", str(path), "--verify", "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["verified"] is True


def test_crc_mismatch_in_a_deflated_member_is_refused_when_read(deflated, craft, capsys):
    craft.set_central(deflated, "rew.npy", "crc", 0x12345678)
    with rollrec.load(deflated) as r, pytest.raises(RolloutFormatError, match="'rew' fails its CRC-32 check"):
        r["rew"]
    _cli_fails_cleanly(capsys, deflated)  # info reads rew


# ---- zip structure --------------------------------------------------------------------------
@pytest.mark.parametrize(("field", "value", "message"), [
    ("method", 14, "compressed with lzma; rollrec reads stored or deflated"),
    ("method", 77, "compressed with method 77"),
    ("version_needed", 99, "needs zip version 9.9"),
    ("flags", 0x1, "is encrypted"),
])
def test_unsupported_zip_features_are_named(deflated, craft, capsys, field, value, message):
    craft.set_central(deflated, "rew.npy", field, value)
    with pytest.raises(RolloutFormatError, match=message):
        rollrec.load(deflated)
    assert message.split(";")[0] in _cli_fails_cleanly(capsys, deflated)


def test_member_claiming_bytes_past_the_file(stored, craft):
    craft.set_central(stored, "obs.npy", "compress_size", 1 << 30)
    craft.set_central(stored, "obs.npy", "file_size", 1 << 30)
    with pytest.raises(RolloutFormatError, match="'obs' claims 1073741824 bytes"):
        rollrec.load(stored)


@pytest.mark.parametrize("cut", [0.0, 0.1, 0.5, 0.97, 0.9999])
def test_truncated_files(stored, deflated, cut):
    for path in (stored, deflated):
        data = path.read_bytes()
        path.write_bytes(data[: int(len(data) * cut)])
        with pytest.raises(RolloutFormatError, match=str(path)):
            _touch_everything(path)


# ---- npy headers ----------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "message"), [
    ("{'descr': '<f4', 'fortran_order': False, 'shape': (8, 3, 'x')}", "shape"),
    ("{'descr': '<f4', 'fortran_order': False, 'shape': (8, 3, -5)}", "shape"),
    ("{'descr': '<f4', 'fortran_order': False, 'shape': (80000, 3, 5)}", "needs"),
    ("{'descr': '<f4', 'fortran_order': False, 'shape': (8, 3, 2)}", "needs"),
    ("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (8, 3)}", "structured"),
    ("{'descr': '<f4', 'fortran_order': 'no', 'shape': (8, 3, 5)}", "fortran_order"),
    ("{'descr': '<q9', 'fortran_order': False, 'shape': (8, 3, 5)}", "unknown dtype"),
    ("{'descr': '<f4', 'fortran_order': False, 'shape': (8, 3, 5), 'x': __import__('os')}", "literal"),
    ("(" * 80 + ")" * 80, "header must be a dict|literal"),
    ("\x00garbage", "literal"),
])
def test_corrupt_npy_headers(stored, craft, capsys, text, message):
    craft.replace_npy_header(stored, "obs.npy", text)
    with pytest.raises(RolloutFormatError, match=f"member 'obs' is not a valid .npy.*({message})|'obs'.*{message}"):
        rollrec.load(stored)
    _cli_fails_cleanly(capsys, stored)


def test_npy_magic_and_version(stored, craft):
    e = craft.entries(stored)["act.npy"]
    craft.patch(stored, e["data"] + 6, b"\x07\x00")
    with pytest.raises(RolloutFormatError, match=r"unknown .npy version 7.0"):
        rollrec.load(stored)
    craft.patch(stored, e["data"], b"\x93NUMPX")
    with pytest.raises(RolloutFormatError, match="no .npy magic"):
        rollrec.load(stored)


# ---- meta -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("overrides", "message"), [
    ({"dt": "DELETE"}, "meta has no 'dt'"),
    ({"dt": None}, "meta 'dt'"),
    ({"dt": [0.02]}, "meta 'dt'"),
    ({"dt": 0}, "meta 'dt'.*> 0"),
    ({"dt": float("nan")}, "meta 'dt'"),
    ({"dt": True}, "meta 'dt'"),
    ({"num_steps": True}, "'num_steps' must be an integer"),
    ({"num_envs": "3"}, "'num_envs' must be an integer"),
    ({"format_version": 1.0}, "unknown format version 1.0"),
    ({"format_version": None}, "unknown format version None"),
    ({"quat_order": "xyzw"}, "'quat_order' is 'xyzw'"),
    ({"link_parents": ["a", "b"]}, "link_parents"),
    ({"nested": "DEEP"}, "nested deeper than 64"),
    ({"bad": "\ud800"}, "not valid unicode"),
])
def test_odd_meta_is_refused_at_open(tmp_path, make_fields, craft, capsys, overrides, message):
    fields = make_fields(5, 2, L=2)
    deep: object = 1
    for _ in range(100):
        deep = [deep]
    values = {k: (craft.DELETE if v == "DELETE" else deep if v == "DEEP" else v) for k, v in overrides.items()}
    path = craft.savez(tmp_path / "m.npz", craft.arrays_with_meta(fields, craft.meta_for(fields, **values)))
    with pytest.raises(RolloutFormatError, match=message):
        rollrec.load(path)
    _cli_fails_cleanly(capsys, path)


def test_meta_nested_past_the_recursion_limit(tmp_path, make_fields, craft, capsys):
    fields = make_fields(5, 2)
    meta = json.dumps(craft.meta_for(fields))
    text = meta[:-1] + ', "x": ' + "[" * 200_000 + "]" * 200_000 + "}"
    path = craft.savez(tmp_path / "deep.npz", craft.arrays_with_meta(fields, text))
    with pytest.raises(RolloutFormatError, match="'meta' is nested"):
        rollrec.load(path)
    _cli_fails_cleanly(capsys, path)


def test_corrupt_unicode_member(tmp_path, make_fields, craft, capsys):
    fields = make_fields(5, 2)
    arrays = craft.arrays_with_meta(fields, craft.meta_for(fields))
    codes = arrays["rew_term_names"].view(np.uint32).copy()
    codes[0] = 0x110000  # past the last code point
    arrays["rew_term_names"] = codes.view(arrays["rew_term_names"].dtype)
    path = craft.savez(tmp_path / "u.npz", arrays)
    with pytest.raises(RolloutFormatError, match="'rew_term_names' holds characters that are not valid unicode"):
        rollrec.load(path)
    _cli_fails_cleanly(capsys, path)


def test_name_arrays_must_be_unicode(tmp_path, make_fields, craft):
    fields = make_fields(5, 2)
    fields["rew_term_names"] = np.arange(3.0)
    path = craft.savez(tmp_path / "n.npz", craft.arrays_with_meta(fields, craft.meta_for(fields)))
    with pytest.raises(RolloutFormatError, match="'rew_term_names' must be a unicode array"):
        rollrec.load(path)


# ---- empty rollouts -------------------------------------------------------------------------
def test_a_file_with_no_steps_reads_empty_envs(tmp_path, make_fields, capsys):
    fields = make_fields(0, 3, L=2)
    path = rollrec.save(tmp_path / "empty.npz", fields, dt=0.02)
    with rollrec.load(path) as r:
        one = r.env(1)
        assert one["obs"].shape == (0, fields["obs"].shape[2]) and one["link_pos"].shape == (0, 2, 3)
        assert r.episode_bounds(0).shape == (1, 2) and r.total_rewards().tolist() == [0.0, 0.0, 0.0]
    assert main(["info", str(path), "--verify"]) == 0
    assert "T=0" in capsys.readouterr().out


# ---- what is not a regular file -------------------------------------------------------------
def test_a_fifo_is_refused_at_once(tmp_path):
    fifo = tmp_path / "pipe.npz"
    os.mkfifo(fifo)
    script = f"import rollrec\ntry:\n    rollrec.load({str(fifo)!r})\nexcept rollrec.RolloutFormatError as e:\n    print(e)\n"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, check=False)
    assert done.returncode == 0 and "is a FIFO, not a rollout file" in done.stdout, done


def test_a_device_is_refused(capsys):
    with pytest.raises(RolloutFormatError, match="/dev/null: is a device"):
        rollrec.load("/dev/null")
    _cli_fails_cleanly(capsys, Path("/dev/null"))


# ---- blow-ups -------------------------------------------------------------------------------
def _deflated(craft, arrays: dict[str, np.ndarray]) -> dict[str, tuple[bytes, int, int, int]]:
    """``arrays`` as deflated zip members for `craft.zip_with`."""
    members = {}
    for name, arr in arrays.items():
        data = craft.npy_bytes(arr)
        c = zlib.compressobj(6, zlib.DEFLATED, -15)
        members[f"{name}.npy"] = (c.compress(data) + c.flush(), 8, zlib.crc32(data), len(data))
    return members


def _bomb_file(path: Path, craft, make_fields, nbytes: int, header_shape: tuple[int, ...],
               claimed: int | None = None) -> Path:
    """A deflated rollout with an extra member ``big`` whose stream inflates to ``nbytes`` zeros after
    a header of ``header_shape`` (float32); its zip entry says it holds ``claimed`` data bytes
    (default: ``nbytes``)."""
    fields = make_fields(4, 2)
    members = _deflated(craft, craft.arrays_with_meta(fields, craft.meta_for(fields, extras=["big"])))
    header = craft.npy_header_bytes(header_shape, "<f4")
    stream, crc = craft.deflate_bomb(nbytes)
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    head = c.compress(header) + c.flush(zlib.Z_FULL_FLUSH)
    from rollrec._npz.zip_records import crc32_combine

    size = len(header) + (nbytes if claimed is None else claimed)
    members["big.npy"] = (head + stream, 8, crc32_combine(zlib.crc32(header), crc, nbytes), size)
    return craft.zip_with(path, members)


BOMB_SCRIPT = textwrap.dedent("""
    import resource, sys
    resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))
    import numpy as np, rollrec
    try:
        with rollrec.load(sys.argv[1]) as r:
            np.asarray(r["big"]).sum()
        print("read")
    except rollrec.RolloutFormatError as e:
        print("refused:", e)
    # VmHWM is this process image's peak (ru_maxrss would include the forking pytest's, kept across exec)
    hwm_kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
    print("maxrss_mb", hwm_kb // 1024)
""")


def test_deflate_bomb_bigger_than_memory_is_refused_without_inflating(tmp_path, craft, make_fields):
    # 4 GiB of zeros in a 4 MB file, header saying so: legitimate-looking, but more than this
    # process may allocate (RLIMIT_AS 3 GiB). Refused before inflating a byte of it.
    path = _bomb_file(tmp_path / "bomb.npz", craft, make_fields, 4 << 30, (4, 2, 1 << 27))
    assert path.stat().st_size < 8 << 20
    done = subprocess.run([sys.executable, "-c", BOMB_SCRIPT, str(path)], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)}, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "refused:" in done.stdout and "inflates to 4.29 GB, more than" in done.stdout, done.stdout
    assert int(done.stdout.split("maxrss_mb")[1]) < 1024


def test_stream_longer_than_its_header_is_cut_at_the_shape(tmp_path, craft, make_fields):
    # The header says 64 bytes of floats, the zip entry and the stream 256 MiB: refused at open.
    path = _bomb_file(tmp_path / "bomb.npz", craft, make_fields, 256 << 20, (4, 2, 2))
    with pytest.raises(RolloutFormatError, match="'big'.*needs 192 bytes but the zip entry holds"):
        _touch_everything(path)
    # The zip entry agrees with the header (16 MiB); the stream goes on to 64 MiB.
    # The zip entry agrees with the header (16 MiB); the stream goes on to 64 MiB: inflating stops
    # one byte past 16 MiB.
    b2 = _bomb_file(tmp_path / "b2.npz", craft, make_fields, 64 << 20, (4, 2, 1 << 19), 16 << 20)
    with rollrec.load(b2) as r, pytest.raises(RolloutFormatError, match="'big' inflates past the 16777344 bytes"):
        r["big"]
    # ... or the stream stops at 16 MiB when both say 4 kB more.
    b3 = _bomb_file(tmp_path / "b3.npz", craft, make_fields, 16 << 20, (4, 2, 524416), 16781312)
    with rollrec.load(b3) as r, pytest.raises(RolloutFormatError, match="'big''s compressed data ends early"):
        r["big"]


def test_header_claiming_more_than_deflate_can_hold(tmp_path, craft, make_fields):
    fields = make_fields(4, 2)
    members = _deflated(craft, craft.arrays_with_meta(fields, craft.meta_for(fields, extras=["big"])))
    header = craft.npy_header_bytes((4, 2, 1 << 37), "<f4")  # 4 TiB
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    members["big.npy"] = (c.compress(header) + c.flush(), 8, 0, len(header) + (1 << 42))
    path = craft.zip_with(tmp_path / "z.npz", members)
    with pytest.raises(RolloutFormatError, match=r"'big' claims 4398046511104 bytes, more than \d+ bytes of deflate"):
        rollrec.load(path)


def test_twenty_thousand_members_use_one_descriptor(tmp_path, make_fields, craft):
    import resource

    fields = make_fields(2, 1)
    for i in range(20_000):
        fields[f"x{i}"] = np.full((2, 1), i, np.int32)
    members = {}
    for name, arr in craft.arrays_with_meta(fields, craft.meta_for(fields)).items():
        data = craft.npy_bytes(arr)
        members[f"{name}.npy"] = (data, 0, zlib.crc32(data), len(data))
    path = craft.zip_with(tmp_path / "many.npz", members)  # as np.savez would, only faster
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(1024, hard), hard))
    try:
        before = len(os.listdir("/proc/self/fd"))
        with rollrec.load(path) as r:
            total = sum(int(np.asarray(r[f"x{i}"]).sum()) for i in range(20_000))
            during = len(os.listdir("/proc/self/fd"))
            assert r.env(0)["x19999"].tolist() == [19999, 19999]
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert total == 2 * sum(range(20_000))
    assert during - before <= 2  # the file's descriptor and the one its map holds


# ---- files changing under the reader ----------------------------------------------------------
TRUNCATE_SCRIPT = textwrap.dedent("""
    import os, sys
    import numpy as np, rollrec
    path = sys.argv[1]
    r = rollrec.load(path)
    for key in r.keys():
        np.asarray(r[key][:1]).tobytes()   # every member mapped and touched
    os.truncate(path, 4096)
    for what in ("env", "episode_returns", "total_rewards"):
        try:
            getattr(r, what)(1) if what != "total_rewards" else r.total_rewards()
            print(what, "read")
        except rollrec.RolloutFormatError as e:
            print(what, "refused:", e)
""")


def test_file_truncated_while_open_raises_instead_of_sigbus(tmp_path, make_fields):
    path = rollrec.save(tmp_path / "t.npz", make_fields(600, 64, L=4), dt=0.02)
    done = subprocess.run([sys.executable, "-c", TRUNCATE_SCRIPT, str(path)], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "PYTHONPATH": str(REPO)}, check=False)
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])  # -7 would be SIGBUS
    for what in ("env", "episode_returns", "total_rewards"):
        assert f"{what} refused: {path}: the file is shorter than when it was opened" in done.stdout, done.stdout


def test_file_renamed_over_while_open_never_mixes_members(tmp_path, make_fields):
    path = rollrec.save(tmp_path / "run.npz", make_fields(10, 4, L=2, seed=1), dt=0.02)
    other = rollrec.save(tmp_path / "other.npz", make_fields(10, 4, L=2, seed=2), dt=0.02)
    original = make_fields(10, 4, L=2, seed=1)
    with rollrec.load(path) as r:
        np.asarray(r["rew"]).sum()
        os.replace(other, path)
        for key in ("obs", "act", "link_pos"):  # never touched before the rename
            np.testing.assert_array_equal(r[key], original[key], err_msg=key)
        np.testing.assert_array_equal(r.env(2)["base_quat"], original["base_quat"][:, 2])
        with pytest.raises(RolloutFormatError, match="changed on disk since it was opened.*another file"):
            r.check_unchanged()


# ---- pickles --------------------------------------------------------------------------------
class _Payload:
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_hostile_legacy_file_runs_no_code_without_the_opt_in(tmp_path, make_fields, capsys):
    marker = tmp_path / "pwned"
    fields = make_fields(4, 1)
    arrays = {k: np.asarray(v) for k, v in fields.items() if k not in ("rew_term_names",)}
    arrays["info"] = np.array([_Payload(str(marker))] * 4, dtype=object)
    path = tmp_path / "legacy.npz"
    np.savez(path, **arrays)
    with pytest.raises(LegacyPickleError, match="allow_pickle=True"):
        rollrec.load(path)
    _cli_fails_cleanly(capsys, path)
    for command in ("replay", "video"):
        _cli_fails_cleanly(capsys, path, command=command)
    assert not marker.exists()


def test_pickled_meta_in_a_v1_file_is_never_unpickled(tmp_path, make_fields, capsys):
    marker = tmp_path / "pwned"
    fields = make_fields(4, 2)
    arrays = {k: np.asarray(v) for k, v in fields.items()}
    arrays["meta"] = np.array(_Payload(str(marker)), dtype=object)
    path = tmp_path / "v1.npz"
    np.savez(path, **arrays)
    for allow in (False, True):
        with pytest.raises(RolloutFormatError):
            rollrec.load(path, allow_pickle=allow)
    _cli_fails_cleanly(capsys, path)
    assert not marker.exists()
    assert pickle.dumps(_Payload("x"))  # the payload is a real one


def test_damaged_legacy_file_with_the_opt_in(tmp_path, make_fields, capsys):
    fields = make_fields(4, 1)
    arrays = {k: np.asarray(v) for k, v in fields.items() if k not in ("act", "rew_term_names")}
    arrays["info"] = np.array([{"reward_terms": {"a": "not a number"}}] * 4, dtype=object)
    path = tmp_path / "legacy.npz"
    np.savez(path, **arrays)
    with pytest.raises(RolloutFormatError, match="not a valid file of the original recorder"):
        rollrec.load(path, allow_pickle=True)
    _cli_fails_cleanly(capsys, path, "--allow-pickle")


def test_names_from_the_file_cannot_drive_the_terminal(tmp_path, make_fields, capsys):
    fields = make_fields(3, 2)
    fields["rew_term_names"] = ["ok", "\x1b]0;pwned\x07", "x\x1b[2J"]
    path = rollrec.save(tmp_path / "esc.npz", fields, dt=0.02, env_name="walker\x1b[31m")
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "walker\\x1b[31m" in out and "\\x1b]0;pwned\\x07" in out

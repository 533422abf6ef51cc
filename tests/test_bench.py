"""``rollrec bench`` on a tiny configuration: the table and JSON have the expected rows and sane figures.

No timing is asserted (the machine is shared): only that every figure was measured and is
positive, and that the rows a user reads are there.
"""

from __future__ import annotations

import json
import math

import pytest

from rollrec.bench import QUICK, SECTIONS, format_markdown, format_table, run
from rollrec.cli import main

TINY = QUICK.replace(
    envs=(64,),
    main_envs=64,
    e2e_bytes=2 << 20,
    e2e_repeats=1,
    compressed_bytes=1 << 20,
    record_steps=4,
    record_repeats=1,
    stall_steps=12,
    stall_repeats=1,
    rss_envs=16,
    rss_steps=(8, 16),
    reader_bytes=1 << 20,
    reader_repeats=1,
    cuda_steps=4,
    cuda_repeats=1,
    volume_steps=12,
    volume_repeats=1,
    sustained_bytes=4 << 20,
    sustained_load_bytes=2 << 20,
    cpu_bytes=4 << 20,
    sections=tuple(s for s in SECTIONS if s != "dist"),  # dist spawns ranks: its own test below
)


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    return run(TINY.replace(scratch=str(tmp_path_factory.mktemp("bench"))))


@pytest.mark.slow
def test_rows_cover_every_section(rows):
    names = [r.name for r in rows]
    for expected in (
        "record() N=64",
        "rollrec, max_steps known, N=64",
        "rollrec, max_steps unknown, N=64",
        "np.save + fsync, N=64",
        "np.save, no fsync (page cache), N=64",
        "original + np.savez + fsync, N=64",
        "original + np.savez_compressed + fsync, N=64",
        "blocked on backpressure, tight loop",
        "open (rollrec.load)",
        "read one env, every per-step field",
        "record() host time, 4 detail envs",
        "bytes written, trigger, 1% failing",
    ):
        assert expected in names
    assert any(n.startswith("TorchRL") for n in names)
    assert any(n.startswith("rollrec: peak RSS") for n in names)
    assert {r.section[0] for r in rows} == set("12345689")


@pytest.mark.slow
def test_every_disk_figure_has_the_device_limit_as_reference(rows):
    # Where the scratch file system takes O_DIRECT, rollrec's disk rates are compared with the
    # device's own rate (the same bytes written with O_DIRECT), never with a page-cache rate.
    names = [r.name for r in rows]
    if "O_DIRECT write (I/O limit), N=64" not in names:
        pytest.skip("the scratch file system refuses O_DIRECT")
    buffered = [r for r in rows if r.name.startswith("rollrec, direct_io=False")]  # compared with rollrec's default
    assert len(buffered) == 1 and buffered[0].reference_name == "rollrec" and buffered[0].target == (">=", 1.0)
    # e2e (known, grown), sustained (known, unknown)
    rollrec_rates = [r for r in rows if r.name.startswith("rollrec, ") and r not in buffered]
    assert len(rollrec_rates) == 4
    for r in rollrec_rates:
        assert r.reference_name == "O_DIRECT write" and "device limit" in r.ratio_means, r
    sustained = {r.name.split(",")[0]: r for r in rows if r.section.startswith("9")}
    assert {"rollrec", "np.save + fsync", "O_DIRECT write (device limit)", "peak Dirty: while recording"} <= set(sustained)
    blocked = [r for r in rows if r.section.startswith("9") and r.name.startswith("blocked on backpressure, 50% of device limit")]
    assert len(blocked) == 1 and blocked[0].target == ("<=", 0.01)


@pytest.mark.slow
def test_measured_figures_are_positive(rows):
    for r in rows:
        if r.note.startswith("skipped"):
            continue
        assert r.value is not None and math.isfinite(r.value) and r.value >= 0, r
        if r.reference is not None:
            assert r.reference > 0, r
        if r.ratio is not None and "blocked" not in r.name:
            assert r.ratio > 0, r
        if r.target is not None:
            assert r.passed in (True, False)


@pytest.mark.slow
def test_tables_list_every_row(rows):
    text = format_table(rows)
    md = format_markdown(rows)
    for r in rows:
        assert r.name in text and r.name in md


@pytest.mark.slow
def test_cli_writes_json(tmp_path, monkeypatch, capsys):
    from rollrec.cli import bench

    monkeypatch.setattr(bench, "QUICK", TINY)
    out = tmp_path / "b.json"
    assert (
        main(["bench", "--quick", "--only", "record", "e2e", "--scratch", str(tmp_path), "--json", str(out)])
        == 0
    )
    doc = json.loads(out.read_text())
    assert doc["machine"]["torch"]
    names = [r["name"] for r in doc["rows"]]
    assert "record() N=64" in names and "np.save + fsync, N=64" in names
    assert all(set(r) >= {"value", "reference", "ratio", "target", "passed"} for r in doc["rows"])
    assert "record() N=64" in capsys.readouterr().out


@pytest.mark.slow
def test_scale_out_section_measures_every_world_size(tmp_path):
    from rollrec.bench.sharded import scale_out

    rows = scale_out(tmp_path, total_envs=64, steps=6, worlds=(1, 2), repeats=1)
    assert [r.name for r in rows] == ["aggregate record rate, 1 rank", "aggregate record rate, 2 ranks",
                                      "close-time gather per rank, 2 ranks"]
    assert all(r.value and r.value > 0 and r.ratio and r.ratio > 0 for r in rows)
    assert rows[0].ratio == 1.0 and "split [32, 32]" in rows[1].note
    assert list(tmp_path.iterdir()) == []  # every rollout and store removed


@pytest.mark.slow
def test_volume_rows_write_less_than_a_plain_copy(rows):
    written = {r.name.removeprefix("bytes written, "): r for r in rows if r.name.startswith("bytes written")}
    assert written["everything"].ratio == pytest.approx(1.0, rel=0.01)  # the plain copy, plus a small meta member
    assert written["every=4"].ratio == pytest.approx(0.25, abs=0.05)
    assert written["4 detail envs"].ratio < 0.2 and written["float16 obs"].ratio < 0.65
    assert written["trigger, 1% failing"].ratio < 0.2

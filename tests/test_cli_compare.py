"""``rollrec compare``: what it prints (text, Markdown, JSON: the library's numbers), its options,
its exit status for CI gating, and how it fails."""

from __future__ import annotations

import json

import pytest

from rollrec.cli import main
from rollrec.cli.compare import WORSE_EXIT
from rollrec.stats.compare import compare
from rollrec.stats.report import metric_cells


def _compare(capsys, *argv) -> tuple[int, str, str]:
    code = main(["compare", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_is_the_library_result(capsys, walker_runs):
    code, out, err = _compare(capsys, walker_runs["policy"], walker_runs["perturbed"], "--json")
    assert code == 0 and err == ""
    assert json.loads(out) == compare(walker_runs["policy"], walker_runs["perturbed"])


def test_text_shows_every_figure_of_the_library(capsys, walker_runs):
    code, out, _ = _compare(capsys, walker_runs["policy"], walker_runs["perturbed"], walker_runs["other_seed"])
    assert code == 0
    result = compare(walker_runs["policy"], walker_runs["perturbed"], walker_runs["other_seed"])
    lines = out.splitlines()
    assert lines[0].startswith("runs (all completed episodes; level 95%, 2000 bootstrap resamples of envs, seed 0)")
    assert any(line.startswith("A  policy.npz") for line in lines)
    assert "B vs A (perturbed.npz vs policy.npz): paired: the same 48 envs" in out
    assert "C vs A (other_seed.npz vs policy.npz): unpaired: their seeds differ (0 and 1)" in out
    for c in result["comparisons"]:
        for m in c["metrics"]:
            cells = metric_cells(m)
            row = next(line for line in lines if line.startswith(cells["label"] + " ") and cells["interval"] in line)
            for key in ("baseline", "run", "difference", "interval", "detectable", "verdict"):
                assert cells[key] in row, (key, cells[key], row)
    assert "B vs A: worse (mean return " in out


def test_markdown_tables(capsys, walker_runs):
    code, out, _ = _compare(capsys, walker_runs["policy"], walker_runs["perturbed"], "--markdown")
    assert code == 0
    assert "| run | envs | completed | terminated | time-outs | unfinished | mean return |" in out
    assert "| metric | A | B | B − A | 95% interval | detectable | verdict |" in out
    assert "| A · policy.npz | 48 |" in out and "**B vs A**: paired" in out
    assert "| forward\\_vel (sum) |" in out  # names from the file are escaped


def test_fail_if_worse_gates_on_the_chosen_metrics(capsys, walker_runs):
    a, b = walker_runs["policy"], walker_runs["perturbed"]
    assert _compare(capsys, a, b, "--fail-if-worse")[0] == WORSE_EXIT  # mean return is worse
    assert _compare(capsys, a, b)[0] == 0  # without the flag, a verdict is not an error
    assert _compare(capsys, b, a, "--fail-if-worse")[0] == 0  # the other way round it is better
    code, out, _ = _compare(capsys, a, b, "--fail-if-worse", "--metric", "termination")
    assert code == 0 and "B vs A: no detectable difference (termination rate" in out
    code, out, _ = _compare(capsys, a, b, "--metric", "energy", "--metric", "forward_vel")
    assert out.splitlines()[-1] == "B vs A: worse on forward_vel (sum); better on energy (sum)"


def test_first_episode_level_and_pairing_options(capsys, walker_runs):
    a, b = walker_runs["policy"], walker_runs["perturbed"]
    code, out, _ = _compare(capsys, a, b, "--first-episode", "--level", "0.9", "--json")
    assert code == 0
    got = json.loads(out)
    assert got == compare(a, b, first_episode=True, level=0.9)
    assert got["runs"][0]["episodes"]["completed"] + got["runs"][0]["episodes"]["unfinished"] == 48
    code, out, _ = _compare(capsys, a, b, "--unpaired")
    assert code == 0 and "B vs A (perturbed.npz vs policy.npz): unpaired, as asked" in out
    code, out, _ = _compare(capsys, a, walker_runs["other_seed"], "--paired", "--resamples", "500", "--seed", "3")
    assert code == 0 and "paired, as asked (though their seeds differ (0 and 1))" in out and "500 bootstrap resamples" in out


@pytest.mark.parametrize(("argv", "message"), [
    (["{a}"], "compare needs a baseline and at least one other run (got one file)"),
    (["{a}", "{b}", "--level", "95"], "level must be between 0 and 1 (e.g. 0.95), got 95.0"),
    (["{a}", "{b}", "--metric", "speed"], "--metric speed: unknown; choose mean, iqm, termination, length, all or a "
                                          "reward term (forward_vel,"),
    (["{a}", "{n}", "--paired"], "cannot pair fewer_envs.npz with policy.npz: policy.npz has 48 envs and "
                                 "fewer_envs.npz 24"),
    (["{a}", "missing.npz"], "missing.npz"),
], ids=["one-file", "level", "metric", "pair", "missing"])
def test_errors_are_one_line(capsys, walker_runs, argv, message):
    names = {"a": walker_runs["policy"], "b": walker_runs["perturbed"], "n": walker_runs["fewer_envs"]}
    code, out, err = _compare(capsys, *(x.format(**names) for x in argv))
    assert code == 1 and out == ""
    assert err.startswith("rollrec compare: error: ") and message in err and err.count("\n") == 1

"""The verdict in a real browser: ``rollrec replay policy.npz perturbed.npz other_seed.npz`` shows,
in the Compare tab, the tables ``rollrec compare`` prints for the same files (the same strings, from
the library's numbers), and the "Side by side" selector puts any two of them next to each other.
Headless Chromium; the runs are recorded from the built-in walker (a policy and a perturbed one)."""

from __future__ import annotations

import re

import pytest

from rollrec.cli import main
from rollrec.stats.compare import compare
from rollrec.stats.report import metric_cells, run_cells

from .conftest import readout, replay_page, wait_for

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def files(walker_runs):
    return walker_runs["policy"], walker_runs["perturbed"], walker_runs["other_seed"]


@pytest.fixture(scope="module")
def replay(chromium, files):
    with replay_page(chromium, files[0], list(files[1:])) as (app, page):
        page.set_default_timeout(60000)  # three robots in software WebGL on a loaded machine: slow, not stuck
        yield app, page


def test_the_cli_the_library_and_the_viewer_show_the_same_numbers(replay, files, capsys):
    app, page = replay
    result = compare(*files)  # the library
    assert main(["compare", *map(str, files)]) == 0  # the command line
    cli = capsys.readouterr().out
    page.get_by_role("tab", name="Compare").click()
    assert app.wait_verdict(120) == result  # the viewer computed the same result
    page.get_by_text(re.compile(r"B vs A: worse \(mean return")).wait_for()
    shown = page.inner_text("body")
    for i, r in enumerate(result["runs"]):
        cells = run_cells(r)
        for key in ("envs", "completed", "unfinished", "mean", "iqm", "termination", "length"):
            assert cells[key] in shown and cells[key] in cli, (i, key, cells[key])
    for c in result["comparisons"]:
        assert c["pairing"] in shown and c["pairing"] in cli
        for m in c["metrics"]:
            cells = metric_cells(m)
            row = next(line for line in shown.splitlines() if line.startswith(cells["label"]) and cells["interval"] in line)
            cli_row = next(line for line in cli.splitlines() if line.startswith(cells["label"] + " ")
                           and cells["interval"] in line)
            for key in ("baseline", "run", "difference", "interval", "detectable", "verdict"):
                assert cells[key] in row and cells[key] in cli_row, (m["metric"], key, cells[key], row)
    assert "B vs A: paired" in shown and "C vs A: unpaired: their seeds differ (0 and 1)" in shown


def test_the_side_by_side_selector_shows_any_two_runs(replay):
    app, page = replay
    app.select_env(7)
    wait_for(lambda: readout(page)[1] == 7, what="env 7")
    page.get_by_label("Side by side", exact=True).click()
    page.get_by_role("option", name="A and C", exact=True).click()
    wait_for(lambda: app.state.pair == (0, 2), what="A and C side by side")
    page.get_by_text(re.compile(r"return A [\d.-]+ · C [\d.-]+")).wait_for()
    page.get_by_role("tab", name="Compare").click()
    page.get_by_text(re.compile(r"C higher in \d+ of 48 envs")).wait_for()
    assert app.state.data_b.env == 7 and app.state.other is app.state.runs[2]

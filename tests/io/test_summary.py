"""`rollrec.io.summary.summarize`: ``rollrec info --json`` is exactly this library call."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

import rollrec
from rollrec.cli import main
from rollrec.io.summary import summarize


def _cli_json(capsys, path) -> dict:
    assert main(["info", str(path), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_info_json_equals_the_library_summary_of_a_plain_file(capsys, tmp_path, make_fields):
    path = rollrec.save(tmp_path / "r.npz", make_fields(12, 3, L=2), dt=0.05, meta={"task": "walk"})
    assert _cli_json(capsys, path) == json.loads(json.dumps(summarize(path)))


def test_info_json_equals_the_library_summary_of_a_volume_file(capsys, tmp_path):
    path = tmp_path / "v.npz"
    with rollrec.Recorder(path, 4, segment_steps=4, every=2, envs=[1, 3]) as rec:
        for t in range(9):
            rec.record(obs=torch.full((4, 3), float(t)), act=torch.zeros(4, 1), rew=torch.arange(4.0),
                       done=torch.tensor([t % 3 == 2, False, True, False]))
    library = summarize(path)
    assert library["volume"]["every"] == 2 and library["volume"]["detail"]["envs"] == 2
    assert _cli_json(capsys, path) == json.loads(json.dumps(library))


def test_info_json_equals_the_library_summary_of_a_sharded_rollout(capsys, tmp_path, make_fields, write_sharded):
    directory = write_sharded(tmp_path / "run", make_fields(5, 6), (2, 4), missing=(0,))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        library = summarize(directory)
    assert library["shards"]["missing_envs"] == [[0, 2]]
    assert _cli_json(capsys, directory) == json.loads(json.dumps(library))


def test_verify_reports_progress_to_the_given_bar(tmp_path, make_fields):
    path = rollrec.save(tmp_path / "r.npz", make_fields(8, 2), dt=0.1)
    seen = []

    class Bar:
        def __init__(self, total):
            seen.append(("total", total))

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            seen.append(("closed",))

        def update(self, n):
            seen.append(("update", n))

    s = summarize(path, verify=True, progress=Bar)
    assert s["verified"] is True
    assert seen[0] == ("total", path.stat().st_size) and seen[-1] == ("closed",)
    assert sum(e[1] for e in seen if e[0] == "update") > 0


def test_episode_figures_come_from_the_segmentation_kernel(tmp_path, make_fields):
    fields = make_fields(30, 4, done_every=7)
    path = rollrec.save(tmp_path / "r.npz", fields, dt=0.1)
    e = summarize(path)["episodes"]
    with rollrec.load(path) as r:
        finished = [x["return"] for x in r.episodes() if x["end"] != "unfinished"]
    assert e["done"] == len(finished) and e["mean_return"] == pytest.approx(np.mean(finished))

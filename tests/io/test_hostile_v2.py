"""Hostile format-v2 files: env ids, window rows and ``every`` chosen to overflow int64 in the
checks, and episodes of one env that overlap. Each is refused by `load` with one line naming the
file (they used to pass it and fail later: IndexError, OverflowError, a broken replay of that
env), and ``info``, ``video`` and ``replay`` say so in one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import rollrec
from rollrec.cli import main
from rollrec.engine import Recorder
from rollrec.format.errors import RolloutFormatError
from rollrec.format.meta import encode_meta

N = 4
BIG = 2**63 - 1


@pytest.fixture(scope="module")
def seeds(tmp_path_factory, volume_reference) -> dict[str, dict[str, np.ndarray]]:
    """The members of real v2 files, one step in 2: ``detail`` (envs 1 and 3 keep every field)
    and ``windows`` (the last 3 rows of every episode whose return is below 1e9: all)."""
    _, make_steps = volume_reference
    out = {}
    for name, options in (("detail", {"envs": [1, 3]}), ("windows", {"capture": 1e9, "window": 3})):
        path = tmp_path_factory.mktemp("v2") / f"{name}.npz"
        with Recorder(path, N, segment_steps=4, every=2, **options) as rec:
            for s in make_steps(24, N, seed=5, burst=(9,)):
                rec.record(**s)
        with np.load(path, allow_pickle=False) as z:
            out[name] = {k: z[k] for k in z.files}
    return out


def write(tmp_path: Path, arrays: dict[str, np.ndarray], *, meta=None, episodes=None) -> Path:
    arrays = dict(arrays)
    if meta is not None:
        m = json.loads(str(arrays["meta"][()]))
        meta(m)
        arrays["meta"] = encode_meta(m)
    if episodes is not None:
        table = arrays["episodes"].copy()
        episodes(table)
        arrays["episodes"] = table
    path = tmp_path / "hostile.npz"
    np.savez(path, **arrays)
    return path


def _overlap(table: np.ndarray) -> None:
    """The second episode of some env starts before its first one stops."""
    env = table[:, 0]
    for e in np.unique(env):
        rows = np.flatnonzero(env == e)
        if len(rows) >= 2:
            first, second = rows[np.argsort(table[rows, 1])][:2]
            table[second, 1] = table[first, 2] - 1
            return
    raise AssertionError("no env with two episodes")


def _window_row_overflow(table: np.ndarray) -> None:
    i = int(np.flatnonzero(table[:, 6] > 0)[0])
    table[i, 5] = BIG  # row + rows wraps to a negative number


def _windows_overlap(table: np.ndarray) -> None:
    i, j = np.flatnonzero((table[:, 5] >= 0) & (table[:, 6] > 0))[:2]
    table[j, 5] = table[i, 5]


HOSTILE = {
    "env ids that wrap in np.diff": ("detail", {"meta": lambda m: m["env_ids"].update(obs=[3, -BIG])},
                                     r"'env_ids'\['obs'\] must be sorted unique ids in 0\.\.3"),
    "env ids past int64": ("detail", {"meta": lambda m: m["env_ids"].update(obs=[1, 2**64 - 1])},
                           r"'env_ids'\['obs'\] must be"),
    "every overflows T * every": ("detail", {"meta": lambda m: m.update(every=2**62, recorded_steps=2**62 * 12)},
                                  r"meta 'every' must be an integer >= 1 with 12 rows of it at most 2\*\*62"),
    "a window row that overflows row + rows": ("windows", {"episodes": _window_row_overflow},
                                               r"window rows outside 0\.\."),
    "steps past int64": ("detail", {"episodes": lambda t: t.__setitem__((0, 2), BIG)}, r"steps outside 0\.\.24"),
    "overlapping episodes of one env": ("detail", {"episodes": _overlap},
                                        r"steps that overlap another episode of its env"),
    "overlapping window rows": ("windows", {"episodes": _windows_overlap}, r"window rows that overlap another episode's"),
}


@pytest.mark.parametrize("seed", ["detail", "windows"])
def test_the_real_files_open(seeds, tmp_path, seed):
    with rollrec.load(write(tmp_path, seeds[seed])) as r:
        assert r.every == 2 and r.T == 12 and len(r.episodes()) > N


@pytest.mark.parametrize("case", list(HOSTILE))
def test_load_refuses_it_in_one_line(seeds, tmp_path, capsys, case):
    seed, change, message = HOSTILE[case]
    path = write(tmp_path, seeds[seed], **change)
    with pytest.raises(RolloutFormatError, match=message) as caught:
        rollrec.load(path)
    assert str(caught.value).startswith(str(path)) and "\n" not in str(caught.value)
    for command in (["info", str(path)], ["video", str(path), "--env", "1", "-o", str(tmp_path / "v.mp4")],
                    ["replay", str(path), "--port", "0"]):
        assert main(command) == 1
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and "internal error" not in err and "hostile.npz" in err, err

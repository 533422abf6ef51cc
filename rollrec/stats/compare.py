"""`compare`: is run B better than baseline A? Every figure ``rollrec compare`` prints, as plain data.

For each run: envs, episodes (completed and unfinished apart), the mean and the interquartile
mean (IQM) of the completed episodes' returns, the termination rate (episodes ended by
termination rather than a time limit, over completed episodes), the mean episode length, and the
mean sum of each reward term per episode. For each run against the baseline, each metric's
difference with its interval at ``level``, the smallest difference this many envs would detect
(80% of the time, at ``level``), and a verdict: ``better`` / ``worse`` when the interval excludes
0 (the run's return, IQM, term sums higher; its termination rate lower), else ``no detectable
difference``; episode length has no better side (``longer`` / ``shorter``).

How (`rollrec.stats`): means, the IQM and term sums by the env-cluster bootstrap (``resamples``
replicates with a fixed ``seed``, percentile intervals; paired runs share each replicate's envs);
the termination rate by Newcombe's hybrid score interval on the effective number of episodes
(`rollrec.stats.rates`). Pairing is decided from the files (`rollrec.stats.pairing`) unless
``paired`` says. Each comparison draws its own replicates from ``seed``, so A vs B gives the same
numbers whatever other runs are compared alongside. Each interval holds at ``level`` on its own:
with many runs and metrics, some "better" or "worse" verdicts are expected by chance alone.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rollrec.io.opening import load
from rollrec.stats.bootstrap import RESAMPLES, SEED
from rollrec.stats.episodes import RunEpisodes, read_episodes
from rollrec.stats.pairing import decide, run_names
from rollrec.stats.sample import Differences, Interval, verdict_codes

#: Metric keys besides the reward terms (``term:<name>``), and how each reads.
METRICS: dict[str, str] = {"mean": "mean return", "iqm": "IQM return", "termination": "termination rate",
                           "length": "episode length"}
BETTER, WORSE, SAME, NO_DATA = "better", "worse", "no detectable difference", "no data"


def compare(baseline: Any, *runs: Any, first_episode: bool = False, level: float = 0.95,
            paired: bool | None = None, resamples: int = RESAMPLES, seed: int = SEED, allow_pickle: bool = False,
            names: Sequence[str] | None = None, progress: Callable[[str, float], None] | None = None) -> dict[str, Any]:
    """Compare each of ``runs`` with ``baseline``; returns plain data (what ``rollrec compare --json``
    prints): ``{"level", "resamples", "seed", "first_episode", "runs": [...], "comparisons": [...]}``.

    Runs are paths (a ``.npz`` file or a sharded rollout's directory), opened rollouts
    (`rollrec.load`) or `RunEpisodes`. ``first_episode``: only each env's first episode (the one
    that starts from the env's own initial state). ``paired``: None decides from the files, True
    or False forces it. ``names``: how to call the runs (default: their shortest distinct paths).
    ``progress(name, fraction)`` is told how reading each run goes. Raises ValueError for a level
    outside (0, 1), fewer than two runs, or runs that cannot be paired when ``paired=True``.
    """
    if not runs:
        raise ValueError("compare needs a baseline and at least one run to compare with it")
    if not 0.0 < float(level) < 1.0:
        raise ValueError(f"level must be between 0 and 1 (e.g. 0.95), got {level}")
    if int(resamples) < 100:
        raise ValueError(f"resamples must be at least 100, got {resamples}")
    sources = (baseline, *runs)
    paths = [_path_of(s) for s in sources]
    labels = list(names) if names is not None else run_names(paths)
    if len(labels) != len(sources):
        raise ValueError(f"{len(labels)} names for {len(sources)} runs")
    episodes = [_episodes(s, allow_pickle, (lambda f, n=n: progress(n, f)) if progress else None)
                for s, n in zip(sources, labels)]
    out: dict[str, Any] = {"level": float(level), "resamples": int(resamples), "seed": int(seed),
                           "first_episode": bool(first_episode),
                           "runs": [_run_summary(e, n, first_episode) for e, n in zip(episodes, labels)],
                           "comparisons": []}
    for i in range(1, len(episodes)):
        out["comparisons"].append(_comparison(episodes[0], episodes[i], (labels[0], labels[i]), i, first_episode,
                                              level, paired, resamples, seed))
    return out


def _path_of(source: Any) -> Path:
    if isinstance(source, (str, os.PathLike)):
        return Path(source)
    return Path(source.path)


def _episodes(source: Any, allow_pickle: bool, progress: Callable[[float], None] | None) -> RunEpisodes:
    if isinstance(source, RunEpisodes):
        return source
    if isinstance(source, (str, os.PathLike)):
        with load(source, allow_pickle=allow_pickle) as rollout:
            return read_episodes(rollout, progress=progress)
    return read_episodes(source, progress=progress)


def _num(x: Any) -> float | None:
    """A JSON number, or None for NaN (nothing to measure)."""
    x = float(x)
    return None if math.isnan(x) else x


def _run_summary(run: RunEpisodes, name: str, first_episode: bool) -> dict[str, Any]:
    sample = run.sample(first_episode)
    counts = run.counts(first_episode)
    means = sample.means()
    rate = sample.rate().rate
    return {
        "name": name,
        "path": str(run.path),
        "env_name": run.env_name,
        "envs": int(run.present.sum()),
        "num_envs": run.num_envs,
        "dt": run.dt,
        "episodes": counts,
        "return": {"mean": _num(means[0]), "iqm": _num(sample.iqm())},
        "termination_rate": _num(rate),
        "length": {"steps": _num(means[1]), "seconds": _num(means[1] * run.dt)},
        "terms": {n: _num(v) for n, v in zip(run.term_names, means[2:])} if run.terms is not None else None,
        "start_digest": run.start_state.digest if run.start_state is not None else None,
        "seed": run.seed,
        "notes": list(run.notes),
    }


def _comparison(a: RunEpisodes, b: RunEpisodes, names: tuple[str, str], index: int, first_episode: bool,
                level: float, paired: bool | None, resamples: int, seed: int) -> dict[str, Any]:
    pairing = decide(a, b, names, paired)
    terms = tuple(n for n in a.term_names if n in b.term_names) if a.terms is not None and b.terms is not None else ()
    sa, sb = a.sample(first_episode, terms), b.sample(first_episode, terms)
    notes = []
    if a.terms is not None and b.terms is not None and set(a.term_names) != set(b.term_names):
        notes.append(f"reward terms differ: compared over the {len(terms)} both hold")
    if not math.isclose(a.dt, b.dt, rel_tol=1e-9):
        notes.append(f"dt differs ({a.dt:g} s and {b.dt:g} s): episode lengths are compared in steps")
    if a.env_name != b.env_name:
        notes.append(f"env names differ ({a.env_name} and {b.env_name})")
    metrics = []
    if sa.num_episodes and sb.num_episodes:
        d = Differences.between(sa, sb, paired=pairing.paired, level=level, resamples=resamples, seed=seed)
        base, run = sa.means(), sb.means()
        metrics += [
            _metric("mean", METRICS["mean"], base[0], run[0], d.mean, 1, "bootstrap"),
            _metric("iqm", METRICS["iqm"], sa.iqm(), sb.iqm(), d.iqm, 1, "bootstrap"),
            _metric("termination", METRICS["termination"], sa.rate().rate, sb.rate().rate, d.termination, -1, "newcombe"),
            _metric("length", METRICS["length"], base[1], run[1], d.length, 0, "bootstrap"),
        ]
        for k, name in enumerate(terms):
            part = Interval(*(np.asarray(x)[k] for x in (d.terms.difference, d.terms.low, d.terms.high, d.terms.detectable)))
            metrics.append(_metric(f"term:{name}", f"{name} (sum)", base[2 + k], run[2 + k], part, 1, "bootstrap"))
    else:
        empty = names[0] if not sa.num_episodes else names[1]
        notes.append(f"{empty} has no completed episode to compare")
    return {"baseline": 0, "run": index, "name": names[1], "baseline_name": names[0], "paired": pairing.paired,
            "pairing": pairing.reason, "notes": notes, "metrics": metrics}


def _metric(key: str, label: str, base: Any, run: Any, d: Interval, direction: int, method: str) -> dict[str, Any]:
    """One row: values, difference (run - baseline), interval, detectable difference and verdict.
    ``direction``: +1 higher is better, -1 lower is better, 0 neither."""
    low, high = _num(d.low), _num(d.high)
    if low is None or high is None:
        verdict = NO_DATA
    else:
        code = int(verdict_codes(low, high))
        if code == 0:
            verdict = SAME
        elif direction == 0:
            verdict = "longer" if code > 0 else "shorter"
        else:
            verdict = BETTER if code * direction > 0 else WORSE
    return {"metric": key, "label": label, "baseline": _num(base), "run": _num(run), "difference": _num(d.difference),
            "low": low, "high": high, "detectable": _num(d.detectable), "verdict": verdict, "method": method,
            "higher_is_better": {1: True, -1: False, 0: None}[direction]}


def metric_keys(result: dict[str, Any]) -> list[str]:
    """Every metric key a `compare` result holds (``mean``, ``iqm``, ``termination``, ``length``,
    ``term:<name>``...), in table order."""
    keys: list[str] = []
    for c in result["comparisons"]:
        keys += [m["metric"] for m in c["metrics"] if m["metric"] not in keys]
    return keys


__all__ = ["BETTER", "METRICS", "NO_DATA", "SAME", "WORSE", "compare", "metric_keys"]

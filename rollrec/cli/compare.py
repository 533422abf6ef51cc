"""``rollrec compare A.npz B.npz [C.npz ...]``: is B better than A? A verdict per metric, with intervals.

The figures are the library's (`rollrec.stats.compare.compare`, which ``--json`` prints as is);
the tables are `rollrec.stats.report`'s, the same strings the viewer's Compare tab shows. With
``--fail-if-worse`` the exit status is `WORSE_EXIT` when a run is worse than the baseline on the
``--metric`` metrics (default: mean return), for gating a policy in CI.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

#: Exit status of ``--fail-if-worse`` when a run is worse (1 is an error, 2 a usage error).
WORSE_EXIT = 3

_DESCRIPTION = """\
Compare evaluation runs of the same task: the first file is the baseline, each other file is
compared with it. For every run: envs, episodes (completed; unfinished at the end, apart), mean and
interquartile mean (IQM) of episode return, termination rate, episode length, per-term sums. For
each run against the baseline: the difference of each, its interval (bootstrap over envs; Newcombe
for the termination rate), the smallest difference this many envs could detect, and a verdict:
better / worse / no detectable difference.

Runs are paired (env k of one against env k of the other, which narrows the intervals) when both
have the same envs and every env started from the same first observation (the digest rollrec
records in meta["start_state"]) and seed; otherwise they are compared as independent samples,
and the output says why."""

_EPILOG = f"""\
examples:
  rollrec compare base.npz new.npz                     is new better than base?
  rollrec compare base.npz new1.npz new2.npz --markdown   two candidates against one baseline, as Markdown
  rollrec compare base.npz new.npz --first-episode     each env's first episode only
  rollrec compare base.npz new.npz --fail-if-worse --metric mean --metric termination
                                                       exit {WORSE_EXIT} if new is worse on either (CI gate)
  rollrec compare base.npz new.npz --json              every figure as one JSON object"""


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``compare`` subcommand to the ``rollrec`` command."""
    p = sub.add_parser("compare", help="is run B better than run A? statistics and a verdict per metric",
                       description=_DESCRIPTION, epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("files", nargs="+", metavar="FILE",
                   help="rollout .npz files or sharded rollout directories; the first is the baseline")
    p.add_argument("--first-episode", action="store_true",
                   help="only each env's first episode (the one that starts from the env's own initial state)")
    p.add_argument("--metric", action="append", default=None, metavar="M",
                   help="what the verdict line and --fail-if-worse judge: mean (default), iqm, termination, length, "
                   "a reward term's name, or all; repeatable")
    p.add_argument("--level", type=float, default=0.95, help="confidence level of the intervals (default 0.95)")
    pairing = p.add_mutually_exclusive_group()
    pairing.add_argument("--paired", action="store_true", default=None,
                         help="pair env k of each run with env k of the baseline whatever the files record")
    pairing.add_argument("--unpaired", action="store_true", help="compare the runs as independent samples")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print every figure as one JSON object")
    out.add_argument("--markdown", action="store_true", help="print Markdown tables")
    p.add_argument("--fail-if-worse", action="store_true",
                   help=f"exit with status {WORSE_EXIT} when a run is worse than the baseline on the --metric metrics")
    p.add_argument("--resamples", type=int, default=2000, help="bootstrap replicates (default 2000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap (default 0: the same result every run)")
    p.add_argument("--allow-pickle", action="store_true",
                   help="open files of the original recorder (they hold pickled objects: trusted files only)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Compare the files; print the result; return the exit status."""
    from rollrec.stats.compare import compare
    from rollrec.stats.report import markdown, text

    if len(args.files) < 2:
        raise ValueError("compare needs a baseline and at least one other run (got one file)")
    paired = True if args.paired else False if args.unpaired else None
    with _progress(len(args.files), quiet=args.json) as report:
        result = compare(*args.files, first_episode=args.first_episode, level=args.level, paired=paired,
                         resamples=args.resamples, seed=args.seed, allow_pickle=args.allow_pickle, progress=report)
    metrics = resolve_metrics(result, args.metric)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(markdown(result, metrics) if args.markdown else text(result, metrics))
    if args.fail_if_worse and worse(result, metrics):
        return WORSE_EXIT
    return 0


def resolve_metrics(result: dict[str, Any], asked: list[str] | None) -> list[str]:
    """The metric keys ``--metric`` names (``mean``, ``iqm``, ``termination``, ``length``, a term's name
    or ``term:<name>``, ``all``); ValueError naming the choices for an unknown one."""
    from rollrec.stats.compare import metric_keys

    keys = metric_keys(result)
    if not asked:
        return ["mean"]
    out: list[str] = []
    for name in asked:
        if name == "all":
            out += [k for k in keys if k not in out]
            continue
        key = name if name in keys else f"term:{name}"
        if key not in keys:
            terms = [k[5:] for k in keys if k.startswith("term:")]
            raise ValueError(f"--metric {name}: unknown; choose mean, iqm, termination, length, all"
                             + (f" or a reward term ({', '.join(terms)})" if terms else ""))
        if key not in out:
            out.append(key)
    return out


def worse(result: dict[str, Any], metrics: list[str]) -> bool:
    """Whether any run's verdict is ``worse`` on any of ``metrics``."""
    return any(m["verdict"] == "worse" for c in result["comparisons"] for m in c["metrics"] if m["metric"] in metrics)


class _progress:
    """A progress bar on stderr over the runs read (only when stderr is a terminal)."""

    def __init__(self, runs: int, quiet: bool):
        from tqdm import tqdm

        self._bar = tqdm(total=runs, unit="run", desc="reading runs", file=sys.stderr, leave=False,
                         disable=quiet or not sys.stderr.isatty(), bar_format="{desc}: {percentage:3.0f}%|{bar}|")
        self._done: dict[str, float] = {}

    def __enter__(self):
        return self._update

    def _update(self, name: str, fraction: float) -> None:
        self._done[name] = fraction
        self._bar.n = sum(self._done.values())
        self._bar.refresh()

    def __exit__(self, *exc: object) -> None:
        self._bar.close()

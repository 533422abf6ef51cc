"""``rollrec bench``: the headline comparisons in one process, as a table (and JSON with ``--json``).

Every figure is a ratio or a rate measured side by side in the same run; `rollrec.bench`
measures them (one module per figure) and formats the table. ``--quick`` runs in under a minute.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rollrec.bench.sections import SECTIONS  # torch-free: every rollrec command builds this parser

if TYPE_CHECKING:
    from rollrec.bench import BenchConfig


def __getattr__(name: str) -> Any:
    """``FULL`` and ``QUICK`` (`rollrec.bench`'s configurations), imported on first use: they
    need torch, which the parser does not."""
    if name in ("FULL", "QUICK"):
        import rollrec.bench

        return getattr(rollrec.bench, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def config_from_args(args: argparse.Namespace) -> BenchConfig:
    this = sys.modules[__name__]  # FULL / QUICK through `__getattr__`, or as a test replaced them
    config = this.QUICK if args.quick else this.FULL
    changes: dict[str, Any] = {"torch_threads": args.threads, "scratch": args.scratch}
    if args.envs:
        changes["envs"] = tuple(args.envs)
        if config.main_envs not in args.envs:
            changes["main_envs"] = args.envs[0]
    if args.only:
        changes["sections"] = tuple(args.only)
    return config.replace(**changes)


def _main(args: argparse.Namespace) -> int:
    from rollrec.bench import format_markdown, format_table, machine, run

    config = config_from_args(args)
    info = machine()
    print(
        f"rollrec bench{' --quick' if args.quick else ''}: N={list(config.envs)}, sections {list(config.sections)}; "
        f"torch {info['torch']} ({config.torch_threads} thread), numpy {info['numpy']}, {info.get('cpu', '?')} x{info['cpus']}",
        file=sys.stderr,
    )
    rows = run(config, progress=lambda m: print(f"  {m} ...", file=sys.stderr, flush=True))
    print(format_markdown(rows) if args.markdown else format_table(rows))
    missed = [r.name for r in rows if r.passed is False]
    if missed:
        print(f"\n{len(missed)} target(s) missed: {', '.join(missed)}", file=sys.stderr)
    if args.json:
        doc = {
            "machine": info,
            "config": {k: v for k, v in vars(config).items() if k != "extra"},
            "rows": [r.as_dict() for r in rows],
        }
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(doc, indent=1, default=str))
        print(f"wrote {args.json}", file=sys.stderr)
    return 0


_DESCRIPTION = (
    "Run the headline comparisons in one process and print a table: record() against a plain copy of "
    "the same tensors, end-to-end writing against np.save, the original recorder and TorchRL, stalls "
    "while flushing, peak memory, the reader, and CUDA when present. Every figure is a ratio or a rate "
    "measured side by side in the same run. --quick runs in under a minute."
)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "bench",
        help="measure rollrec against the copy limit, the disk limit and the tools it replaces",
        description=_DESCRIPTION,
    )
    p.add_argument(
        "--quick", action="store_true", help="small sizes, N=4096 only, fewer repeats (under a minute)"
    )
    p.add_argument("--json", metavar="PATH", help="also write every row (and the machine) as JSON to PATH")
    p.add_argument(
        "--envs", type=int, nargs="+", metavar="N", help="numbers of envs to run (default 256 4096 16384)"
    )
    p.add_argument(
        "--only",
        nargs="+",
        choices=SECTIONS,
        metavar="SECTION",
        help=f"run only these sections: {', '.join(SECTIONS)}",
    )
    p.add_argument(
        "--scratch", metavar="DIR", help="where scratch files go (default $ROLLREC_BENCH_DIR or the temp dir)"
    )
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads (default 1: steadier on a shared machine)",
    )
    p.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    p.set_defaults(func=_main)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rollrec")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["bench", *(argv if argv is not None else sys.argv[1:])])
    return args.func(args)


__all__ = ["config_from_args", "main", "register"]

"""``rollrec recover FILE``: make the flushed steps of an interrupted recording readable."""

from __future__ import annotations

import argparse
import json
import struct

from rollrec.io.errors import RolloutFormatError
from rollrec.io.writer import recover


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("recover", help="finish the partial file of a recording that was killed",
                       description="Turn FILE.partial (left by a killed recording) into FILE, keeping every flushed step.")
    p.add_argument("file", help="the rollout's final name (run.npz) or its partial file (run.npz.partial)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    try:
        path = recover(args.file)
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, AttributeError, IndexError,
            struct.error) as exc:
        # A damaged sidecar: not JSON, or not the layout `recover` expects.
        raise RolloutFormatError(
            f"{args.file}: the interrupted recording's sidecar (.partial.json) is damaged "
            f"({type(exc).__name__}: {exc})"
        ) from None
    from rollrec.io.reader import load

    with load(path) as r:
        print(f"recovered {path}: {r.T} steps x {r.N} envs")
    return 0

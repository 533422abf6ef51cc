"""``rollrec recover FILE``: make the flushed steps of an interrupted recording readable."""

from __future__ import annotations

import argparse

from rollrec.io.writer import recover


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("recover", help="finish the partial file of a recording that was killed",
                       description="Turn FILE.partial (left by a killed recording) into FILE, keeping every committed "
                       "step after checking it against the CRC-32 recorded when it was written. Removes the "
                       "partial, sidecar and temporary files.")
    p.add_argument("file", help="the rollout's final name (run.npz) or its partial file (run.npz.partial)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    path = recover(args.file)
    from rollrec.io.reader import load

    with load(path) as r:
        if r.meta.get("recovered"):
            print(f"recovered {path}: {r.T} steps x {r.N} envs")
        else:  # killed after the final rename: only the sidecar was left to remove
            print(f"{path} was already complete ({r.T} steps x {r.N} envs); removed the leftover sidecar")
    return 0

"""``rollrec recover FILE``: make the flushed steps of an interrupted recording readable."""

from __future__ import annotations

import argparse
import json
import struct

from rollrec.format.errors import RolloutFormatError
from rollrec.io.recovery import recover


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("recover", help="finish the partial file of a recording that was killed",
                       description="Turn FILE.partial (left by a killed recording) into FILE, keeping every committed "
                       "step after checking it against the CRC-32 recorded when it was written. Removes the "
                       "partial, sidecar and temporary files. A recording still in progress (its process holds the "
                       "lease) is never touched. For a directory recorded by several ranks: recover each interrupted "
                       "shard and update (or rebuild) its manifest.")
    p.add_argument("file", help="the rollout's final name (run.npz), its partial file (run.npz.partial), "
                   "or a sharded rollout's directory")
    p.add_argument("--force", action="store_true",
                   help="recover a recording made on another host on a file system without locks, whose process "
                   "cannot be asked whether it still runs (never one whose lock is held)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    try:
        path = recover(args.file, force=args.force)
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, AttributeError, IndexError,
            struct.error) as exc:
        # A damaged sidecar: not JSON, or not the layout `recover` expects.
        raise RolloutFormatError(
            f"{args.file}: the interrupted recording's sidecar (.partial.json) is damaged "
            f"({type(exc).__name__}: {exc})"
        ) from None
    if path.is_dir():  # sharded (torch.distributed): say what became of each shard
        from rollrec.io.sharded.manifest import read_manifest

        m = read_manifest(path)
        print(f"{path}: {m.state}, {m.num_steps} steps x {m.num_envs} envs in {m.world_size} shards")
        for e in m.shards:
            steps = "-" if e.num_steps is None else e.num_steps
            note = f"  ({e.note})" if e.note else ""
            print(f"  rank {e.rank:<4} envs {e.env_offset}..{e.env_stop - 1:<8} {e.status:<10} {steps} steps{note}")
        return 0
    from rollrec.io.opening import load

    with load(path) as r:
        if r.meta.get("recovered"):
            print(f"recovered {path}: {r.T} steps x {r.N} envs")
        else:  # killed after the final rename: only the sidecar was left to remove
            print(f"{path} was already complete ({r.T} steps x {r.N} envs); removed the leftover sidecar")
    return 0

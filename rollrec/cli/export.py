"""``rollrec export``: a rollout in another tool's format (LeRobot, robomimic, Rerun, viser)."""

from __future__ import annotations

import argparse
import sys

from rollrec.cli.video import parse_envs


def _cameras(text: str) -> list[str]:
    return [c for c in (p.strip() for p in text.split(",")) if c]


def register(subparsers) -> None:
    """Add the ``export`` subcommand."""
    p = subparsers.add_parser(
        "export",
        help="export a rollout: LeRobot v3 dataset, robomimic HDF5, Rerun .rrd, or one episode as a viser page",
        description="Write a rollout in another tool's format. Datasets (lerobot, robomimic) get one episode per\n"
        "(env, episode) of the rollout; rerun gets the chosen envs' poses, model, trail, reward terms and\n"
        "cameras on a step timeline; viser gets one env's episode as a scene recording that plays in a\n"
        "browser (.html: a self-contained page; .viser: viser's recording file).\n"
        "The output is written under a temporary name and renamed when complete.",
        epilog="examples:\n"
        "  rollrec export run.npz --to lerobot ds/ --task 'walk forward' --episodes truncated\n"
        "  rollrec export run.npz --to robomimic demos.hdf5 --min-return 50\n"
        "  rollrec export run.npz --to rerun run.rrd --envs 0-3 && rerun run.rrd\n"
        "  rollrec export run.npz --to viser fall.html --env 7 --episodes terminated --episode 0\n"
        "extras: pip install 'rollrec[lerobot]' (pyarrow, av), 'rollrec[hdf5]' (h5py), 'rollrec[rerun]' (rerun-sdk)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", help="rollout file (.npz) or sharded rollout directory")
    p.add_argument("--to", required=True, choices=("lerobot", "robomimic", "rerun", "viser"), help="target format")
    p.add_argument("out", help="output: a directory (lerobot), .hdf5 (robomimic), .rrd (rerun), .html or .viser (viser)")
    p.add_argument("--envs", type=parse_envs, default=None,
                   help="envs to export, e.g. 0,1,2 or 0-99 (default: every env; rerun: env 0)")
    p.add_argument("--episodes", choices=("all", "terminated", "truncated", "unfinished", "captured"), default="all",
                   help="which episodes: all (default), those that ended a given way, or those the file holds "
                   "every field of (captured)")
    p.add_argument("--min-return", type=float, default=None, metavar="R", help="only episodes whose return is at least R")
    p.add_argument("--env", type=int, default=0, help="viser: the env whose episode is exported (default 0)")
    p.add_argument("--episode", type=int, default=0,
                   help="viser: which of the env's matching episodes (default 0, the first; -1 the last)")
    p.add_argument("--cameras", type=_cameras, default=None, metavar="NAMES",
                   help="cameras to carry, comma-separated (default: all)")
    p.add_argument("--no-cameras", action="store_true", help="carry no camera")
    p.add_argument("--fps", type=float, default=None, help="lerobot: frames per second (default 1/dt; an integer)")
    p.add_argument("--task", default=None, help="lerobot: the task's text (default: the env's name)")
    p.add_argument("--lossless-video", action="store_true",
                   help="lerobot: cameras as lossless H.264 (RGB; bigger) instead of H.264 yuv420p")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.add_argument("--allow-pickle", action="store_true", help="open files of the original recorder (trusted only)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rollrec.exports.api import export
    from rollrec.exports.deps import MissingExtraError

    def note(line: str) -> None:
        print(f"rollrec export: {line}", file=sys.stderr)

    try:
        out = export(args.file, args.out, to=args.to, envs=args.envs, episodes=args.episodes,
                     min_return=args.min_return, cameras=[] if args.no_cameras else args.cameras, fps=args.fps,
                     task=args.task, lossless_video=args.lossless_video, env=args.env, episode=args.episode,
                     overwrite=args.overwrite, progress=not args.quiet and sys.stderr.isatty(),
                     allow_pickle=args.allow_pickle, note=note)
    except (MissingExtraError, KeyError, IndexError) as exc:
        print(f"rollrec export: error: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        return 1
    print(out)
    return 0

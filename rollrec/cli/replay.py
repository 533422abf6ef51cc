"""``rollrec replay FILE [FILE_B ...]`` and ``python -m rollrec.viewer --npz FILE`` (the original tool's spelling)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

_DESCRIPTION = """\
Serve a browser replay of a rollout file until Ctrl-C: any env, playback controls, reward and
field plots, and an overview of every episode of every env (histogram of returns, a sortable,
filterable table; click a row to jump to that episode).

Give two files to compare them (two checkpoints of the same task): both robots on one timeline,
one env selector, both reward curves, the verdict of rollrec compare (is B better than A, with
intervals) and a per-env table of return differences. Give more files to judge each against the
first and pick which two stand side by side. All files need the same number of envs and the same
dt; if their lengths differ, the shortest one sets the timeline.

A recording in progress is followed while it is written: give the path of its finished file
(run.npz), its run.npz.partial, or the directory of a sharded recording whose ranks are
recording. The replay shows every committed step and grows (LIVE line, "Jump to latest"); when
the recording finishes it goes on with the finished file; when the recorder dies it says so and
names rollrec recover. From another machine: ssh -L 8080:127.0.0.1:8080 gpu-box, then open
http://127.0.0.1:8080 here."""

_EPILOG = """\
examples:
  rollrec replay run.npz                       open http://127.0.0.1:8080
  rollrec replay run.npz --env -1 --port 8090  last env first, another port
  rollrec replay old.npz new.npz               compare two checkpoints
  rollrec replay base.npz a.npz b.npz          judge two candidates against a baseline
  rollrec replay run.npz --ghost-robots        other envs as translucent robots (with a robot model)
  rollrec replay run.npz --urdf robot.urdf     draw a URDF posed by the recorded link poses
  rollrec replay results/run.npz               while it is being recorded: follows it live"""


def _add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--env", type=int, default=0, metavar="K",
                        help="env to show first (default 0; negative counts from the end, -1 is the last)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1; anything else is reachable by others)")
    parser.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080; 0: any free port)")
    parser.add_argument("--no-ghosts", action="store_true", help="start with the other envs' ghosts hidden")
    parser.add_argument("--ghost-robots", action="store_true",
                        help="draw ghosts as whole translucent robots (files with a robot model, or --urdf)")
    parser.add_argument("--urdf", default=None, metavar="FILE",
                        help="draw this URDF's visuals, posed by the recorded link poses matched by link name "
                        "(instead of the model stored in the file)")
    parser.add_argument("--package-dir", action="append", default=[], metavar="DIR",
                        help="where package:// meshes of --urdf are found (repeatable; default: folders above the URDF)")
    parser.add_argument("--allow-pickle", action="store_true",
                        help="open files of the original recorder (they hold pickled objects: trusted files only)")


def register(subparsers) -> None:
    """Add the ``replay`` subcommand to the ``rollrec`` command."""
    p = subparsers.add_parser("replay", help="replay a rollout in the browser, or compare two",
                              description=_DESCRIPTION, epilog=_EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("files", nargs="+", metavar="FILE",
                   help="rollout .npz file (or a recording in progress); more files are compared with the first, "
                   "two at a time side by side")
    _add_options(p)
    # Used by Recorder(serve=...) / RolloutRecorder.run(serve=...), which run this command as a child process.
    p.add_argument("--follow-parent", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--control", default=None, help=argparse.SUPPRESS)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Serve the file(s) until Ctrl-C; returns the exit code."""
    from rollrec.viewer.server import serve

    files = list(args.files)
    model = None
    if args.urdf is not None:
        from rollrec.io.opening import load
        from rollrec.model.urdf import model_from_urdf

        with load(files[0], allow_pickle=args.allow_pickle) as r:  # its link names: fixed children fold into them
            names = r.link_names
        if not names:
            raise ValueError(f"--urdf: {files[0]} records no link poses to pose {args.urdf} with")
        model = model_from_urdf(args.urdf, link_names=names, package_dirs=args.package_dir)
    follow_parent = getattr(args, "follow_parent", False)
    app = serve(files[0], files[1:] or None, env=args.env, host=args.host, port=args.port,
                allow_pickle=args.allow_pickle, ghosts=False if args.no_ghosts else None, block=not follow_parent,
                model=model, ghost_robots=args.ghost_robots, control=getattr(args, "control", None))
    if follow_parent:  # serve until the recording process ends (our stdin closes) or Ctrl-C
        from rollrec.viewer.server import stop_app

        try:
            sys.stdin.buffer.read()
        except KeyboardInterrupt:
            pass
        finally:
            stop_app(app)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m rollrec.viewer --npz FILE [--env K] [--host H] [--port P] [--allow-pickle]``."""
    parser = argparse.ArgumentParser(prog="python -m rollrec.viewer",
                                     description="Replay a rollout in the browser (same as rollrec replay FILE).")
    parser.add_argument("--npz", required=True, metavar="FILE", help="rollout .npz file")
    _add_options(parser)
    args = parser.parse_args(argv)
    args.files = [args.npz]
    try:
        return run(args)
    except KeyboardInterrupt:
        return 130
    except (FileNotFoundError, ValueError, OSError) as exc:
        print(f"python -m rollrec.viewer: error: {exc}", file=sys.stderr)
        return 1

"""``rollrec replay FILE`` and ``python -m rollrec.viewer --npz FILE`` (the original tool's spelling)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--env", type=int, default=0, metavar="K", help="env to show first (default 0)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1; anything else is reachable by others)")
    parser.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080)")
    parser.add_argument("--allow-pickle", action="store_true",
                        help="open files of the original recorder (they hold pickled objects: trusted files only)")


def register(subparsers) -> None:
    """Add the ``replay`` subcommand to the ``rollrec`` command."""
    p = subparsers.add_parser("replay", help="replay a rollout in the browser",
                              description="Serve a browser replay of a rollout file until Ctrl-C.")
    p.add_argument("file", help="rollout .npz file")
    _add_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Serve ``args.file`` until Ctrl-C; returns the exit code."""
    from rollrec.viewer.app import serve

    serve(args.file, env=args.env, host=args.host, port=args.port, allow_pickle=args.allow_pickle, block=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m rollrec.viewer --npz FILE [--env K] [--host H] [--port P] [--allow-pickle]``."""
    parser = argparse.ArgumentParser(prog="python -m rollrec.viewer", description="Replay a rollout in the browser.")
    parser.add_argument("--npz", required=True, dest="file", metavar="FILE", help="rollout .npz file")
    _add_options(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except KeyboardInterrupt:
        return 130
    except (FileNotFoundError, ValueError, OSError) as exc:
        print(f"python -m rollrec.viewer: error: {exc}", file=sys.stderr)
        return 1

"""The ``rollrec`` command: one subcommand per job, each registered by the module that owns it."""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence

# Modules that add a subcommand: each has ``register(subparsers)`` which adds its parser and sets
# ``func`` (taking the parsed args, returning an exit code).
_COMMAND_MODULES = (
    "rollrec.cli.demo",
    "rollrec.cli.info",
    "rollrec.cli.compare",
    "rollrec.cli.recover",
    "rollrec.cli.replay",
    "rollrec.cli.video",
    "rollrec.cli.export",
    "rollrec.cli.bench",
)


#: Options whose value is a list of envs. argparse takes a value that starts with "-" for an option
#: unless it is one negative number, so ``--envs -2,-1`` failed with "expected one argument";
#: such a value is joined to its option (``--envs=-2,-1``) before parsing.
_ENV_LIST_OPTIONS = ("--envs",)
_NEGATIVE_LIST = re.compile(r"-\d[\d,\s-]*")

_DESCRIPTION = ("Record rollouts of massively parallel simulations, inspect them, replay them in the browser "
                "and render them to video. Run rollrec COMMAND --help for a command's options.")


def build_parser() -> argparse.ArgumentParser:
    from importlib import import_module

    parser = argparse.ArgumentParser(prog="rollrec", description=_DESCRIPTION)
    from rollrec._version import __version__

    parser.add_argument("--version", action="version", version=f"rollrec {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        try:
            module = import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and name.startswith(exc.name):  # subcommand not built into this version
                continue
            raise
        module.register(sub)
    return parser


def _join_negative_lists(argv: Sequence[str]) -> list[str]:
    """``[..., "--envs", "-2,-1", ...]`` -> ``[..., "--envs=-2,-1", ...]`` (see `_ENV_LIST_OPTIONS`)."""
    out: list[str] = []
    for token in argv:
        if out and out[-1] in _ENV_LIST_OPTIONS and _NEGATIVE_LIST.fullmatch(token):
            out[-1] = f"{out[-1]}={token}"
        else:
            out.append(token)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(_join_negative_lists(sys.argv[1:] if argv is None else argv))
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (FileNotFoundError, ValueError, OSError, ImportError) as exc:
        # Expected failures (a bad file: RolloutFormatError is a ValueError; a bad argument, a busy
        # port; an optional package missing, e.g. PyAV for camera images): one line, no traceback.
        print(f"rollrec {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 1
    except Exception as exc:
        # Anything else is a bug in rollrec; still one line, unless asked for the traceback.
        if os.environ.get("ROLLREC_DEBUG"):
            raise
        print(f"rollrec {args.command}: internal error: {type(exc).__name__}: {_one_line(exc)} "
              "(please report it; ROLLREC_DEBUG=1 shows the traceback)", file=sys.stderr)
        return 1


#: Longest error line printed (a tool's message may quote a whole command line).
MAX_ERROR_CHARS = 1000


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 1] + "…"


if __name__ == "__main__":
    sys.exit(main())

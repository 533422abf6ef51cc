"""``rollrec video``: render a recorded rollout to a video (mp4, mov, mkv or gif), headless."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rollrec.media.writer import FORMAT_DEFAULTS
from rollrec.video.camera import CAMERA_PRESETS
from rollrec.video.scene import STYLES

#: The formats ``rollrec video`` writes, by the output's extension (the writer picks each one's
#: codec from the extension: `rollrec.media.writer.FORMAT_DEFAULTS`).
VIDEO_FORMATS = tuple(FORMAT_DEFAULTS)


def writer_options(path: str) -> dict:
    """`VideoWriter` options for the output ``path`` (none: its extension picks the format);
    ValueError naming the formats for an extension rollrec video does not write."""
    ext = Path(path).suffix.lower()
    if ext not in VIDEO_FORMATS:
        got = f"'{ext}'" if ext else "no extension"
        raise ValueError(f"{path}: rollrec video writes {', '.join(VIDEO_FORMATS)} files (chosen by the "
                         f"extension of -o); got {got}")
    return {}


def parse_size(text: str) -> tuple[int, int]:
    """``"640x480"`` -> ``(640, 480)``; argparse reports a bad value."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be WIDTHxHEIGHT, e.g. 640x480; got {text!r}") from None
    if w < 16 or h < 16:
        raise argparse.ArgumentTypeError(f"size must be at least 16x16; got {text!r}")
    return w, h


def parse_envs(text: str) -> list[int]:
    """``"0,1,2"`` -> ``[0, 1, 2]``; ranges like ``"0-3"`` are accepted too, and negative envs
    (``-1``: the last) alone. A reversed range (``5-2``) is an error that says so."""
    envs: list[int] = []
    try:
        for part in filter(None, (p.strip() for p in text.split(","))):
            if "-" in part[1:]:
                a, b = (int(x) for x in part.split("-", 1))
                if b < a:
                    raise argparse.ArgumentTypeError(f"env range {part} is reversed; write {b}-{a}")
                envs.extend(range(a, b + 1))
            else:
                envs.append(int(part))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"envs must be a comma-separated list like 0,1,2,3 or a range like 0-3; got {text!r}"
        ) from None
    if not envs:
        raise argparse.ArgumentTypeError("no envs given")
    return envs


def add_urdf_options(p: argparse.ArgumentParser) -> None:
    """``--urdf FILE`` and ``--package-dir DIR``: draw a URDF's links posed by the recorded link poses."""
    p.add_argument("--urdf", default=None, metavar="FILE",
                   help="draw this URDF's visuals, posed by the recorded link poses matched by link name "
                   "(instead of the model stored in the file)")
    p.add_argument("--package-dir", action="append", default=[], metavar="DIR",
                   help="where package:// meshes of --urdf are found (repeatable; default: folders above the URDF)")


def urdf_model(args: argparse.Namespace, link_names):
    """The model of ``--urdf`` for a rollout recording ``link_names``, or None without ``--urdf``."""
    if args.urdf is None:
        return None
    from rollrec.model.urdf import model_from_urdf

    if not link_names:
        raise ValueError(f"--urdf: {args.file} records no link poses to pose {args.urdf} with")
    return model_from_urdf(args.urdf, link_names=link_names, package_dirs=args.package_dir)


def register(subparsers) -> None:
    """Add the ``video`` subcommand."""
    p = subparsers.add_parser(
        "video",
        help="render a recorded rollout to a video (mp4, mov, mkv or gif; headless, CPU)",
        description="Render env(s) of a recorded rollout to a video without the simulator or a GPU:\n"
        "ground, trail, the robot (its bodies when the file stores its model, else a link skeleton)\n"
        "and a reward-terms overlay, from a camera preset.\n"
        "The extension of -o picks the format: .mp4 (H.264, the default), .mov, .mkv or .gif.",
        epilog="examples:\n"
        "  rollrec video run.npz --env 3 -o env3.mp4\n"
        "  rollrec video run.npz --env -1 --size 320x240 -o last_env.gif\n"
        "  rollrec video run.npz --envs 0-3 --camera top -o grid.mp4\n"
        "  rollrec video run.npz --urdf robot.urdf --style bodies -o robot.mp4",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", help="rollout file (.npz)")
    p.add_argument("--env", type=int, default=0,
                   help="env to render (default 0; negative counts from the end, -1 is the last)")
    p.add_argument(
        "--envs", type=parse_envs, default=None,
        help="several envs, e.g. 0,1,2,3 or 0-3 or -2,-1 (the last two): a tiled grid video",
    )
    p.add_argument(
        "--per-env", action="store_true", help="with --envs: one file per env (OUT_envK.mp4), not a grid"
    )
    p.add_argument("-o", "--output", default=None,
                   help="output video: .mp4, .mov, .mkv or .gif (default: FILE with .mp4)")
    p.add_argument("--fps", type=float, default=None, help="frames per second (default: real time, 1/dt)")
    p.add_argument(
        "--size", type=parse_size, default=(640, 480), help="WIDTHxHEIGHT of the video (default 640x480)"
    )
    p.add_argument(
        "--camera", choices=CAMERA_PRESETS, default="follow", help="camera preset (default follow)"
    )
    p.add_argument("--start", type=int, default=0, help="first step to render")
    p.add_argument("--stop", type=int, default=None, help="step to stop before (default: the end)")
    p.add_argument("--no-overlay", action="store_true", help="leave out the reward-terms overlay")
    p.add_argument(
        "--style", choices=STYLES, default="auto",
        help="how the robot is drawn: bodies (its geometry, from the model stored in the file), sticks "
        "(link skeleton and base frame), auto (default: bodies when the file has a model)",
    )
    add_urdf_options(p)
    p.add_argument(
        "--allow-pickle", action="store_true", help="open files of the original recorder (trusted only)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rollrec.io.opening import load
    from rollrec.video.render import render_rollout
    from rollrec.video.scene import missing_note

    out = args.output or str(Path(args.file).with_suffix(".mp4"))
    options = writer_options(out)
    with load(args.file, allow_pickle=args.allow_pickle) as rollout:
        for e in [args.env] if args.envs is None else args.envs:
            note = missing_note(rollout, e % rollout.N) if -rollout.N <= e < rollout.N else None
            if note:
                print(f"rollrec video: {note}", file=sys.stderr)
        result = render_rollout(
            rollout,
            out,
            env=args.env,
            envs=args.envs,
            camera=args.camera,
            size=args.size,
            fps=args.fps,
            start=args.start,
            stop=args.stop,
            per_env=args.per_env,
            overlay=not args.no_overlay,
            style=args.style,
            model=urdf_model(args, rollout.link_names),
            progress=not args.quiet and sys.stderr.isatty(),
            **options,
        )
    for path in result if isinstance(result, list) else [result]:
        print(path)
    return 0

"""``rollrec video``: render a recorded rollout to an mp4, headless."""

from __future__ import annotations

import argparse
import sys

from rollrec.video.camera import CAMERA_PRESETS
from rollrec.video.scene import STYLES


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
    """``"0,1,2"`` -> ``[0, 1, 2]``; ranges like ``"0-3"`` are accepted too."""
    envs: list[int] = []
    try:
        for part in filter(None, (p.strip() for p in text.split(","))):
            if "-" in part[1:]:
                a, b = part.split("-", 1)
                envs.extend(range(int(a), int(b) + 1))
            else:
                envs.append(int(part))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"envs must be a comma-separated list like 0,1,2,3; got {text!r}"
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
        help="render a recorded rollout to an mp4 (headless, CPU)",
        description="Render env(s) of a recorded rollout to a video without the simulator or a GPU: "
        "ground, trail, the robot (its bodies when the file stores its model, else a link skeleton) and a "
        "reward-terms overlay, from a camera preset.",
    )
    p.add_argument("file", help="rollout file (.npz)")
    p.add_argument("--env", type=int, default=0, help="env to render (default 0)")
    p.add_argument(
        "--envs", type=parse_envs, default=None, help="several envs, e.g. 0,1,2,3: a tiled grid video"
    )
    p.add_argument(
        "--per-env", action="store_true", help="with --envs: one file per env (OUT_envK.mp4), not a grid"
    )
    p.add_argument("-o", "--output", default=None, help="output video (default: FILE with .mp4)")
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
    from pathlib import Path

    from rollrec.io.reader import load
    from rollrec.video.render import render_rollout

    out = args.output or str(Path(args.file).with_suffix(".mp4"))
    with load(args.file, allow_pickle=args.allow_pickle) as rollout:
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
        )
    for path in result if isinstance(result, list) else [result]:
        print(path)
    return 0

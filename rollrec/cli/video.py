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
        "and a reward-terms overlay, from a camera preset; or a camera recorded with the rollout\n"
        "(--camera NAME), alone or beside that render (--beside).\n"
        "The extension of -o picks the format: .mp4 (H.264, the default), .mov, .mkv or .gif.",
        epilog="examples:\n"
        "  rollrec video run.npz --env 3 -o env3.mp4\n"
        "  rollrec video run.npz --env -1 --size 320x240 -o last_env.gif\n"
        "  rollrec video run.npz --envs 0-3 --camera top -o grid.mp4\n"
        "  rollrec video run.npz --urdf robot.urdf --style bodies -o robot.mp4\n"
        "  rollrec video run.npz --camera front --env 3 -o front3.mp4     (a recorded camera)\n"
        "  rollrec video run.npz --camera front --beside --view side -o both.mp4",
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
        "--size", type=parse_size, default=None,
        help="WIDTHxHEIGHT of the video (default 640x480; a recorded camera: its aspect, 480 high; --beside: both)"
    )
    p.add_argument(
        "--camera", default=None, metavar="NAME",
        help="a camera recorded with the rollout (rollrec info lists them): its frames make the video; "
        f"or the render's view preset ({', '.join(CAMERA_PRESETS)}), as --view"
    )
    p.add_argument("--view", choices=CAMERA_PRESETS, default=None,
                   help="the 3D render's camera preset (default follow)")
    p.add_argument("--beside", action="store_true",
                   help="with a recorded --camera: put it beside the 3D render (from --view) instead of alone")
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


def camera_choice(args: argparse.Namespace, rollout) -> tuple[str | None, str]:
    """``(recorded camera or None, the render's view preset)`` of ``--camera``/``--view``/``--beside``:
    a recorded camera's name wins over a view preset of the same name (``--view`` names the preset)."""
    cameras = getattr(rollout, "cameras", {}) or {}
    name = args.camera
    if args.beside and name not in cameras:
        have = ", ".join(cameras) or "none"
        raise ValueError(f"--beside puts a recorded camera beside the render: name one with --camera (cameras: {have})")
    if name is not None and name not in cameras:
        if name not in CAMERA_PRESETS:
            have = ", ".join(cameras) or "none"
            raise ValueError(f"--camera {name}: {args.file} has no recorded camera of that name (cameras: {have}) "
                             f"and it is not a view preset ({', '.join(CAMERA_PRESETS)})")
        if args.view is not None and args.view != name:
            raise ValueError(f"--camera {name} and --view {args.view} both choose the render's view: give one")
        return None, name  # the view preset, as --camera always meant
    return name, args.view or "follow"


def run(args: argparse.Namespace) -> int:
    from rollrec.io.opening import load
    from rollrec.video.render import render_rollout
    from rollrec.model.shapes import ModelTooLarge
    from rollrec.video.bodies import check_drawable
    from rollrec.video.scene import missing_note

    out = args.output or str(Path(args.file).with_suffix(".mp4"))
    options = writer_options(out)
    with load(args.file, allow_pickle=args.allow_pickle) as rollout:
        image, view = camera_choice(args, rollout)
        model = urdf_model(args, rollout.link_names)
        if args.style == "auto":  # a model too large to draw: sticks, said in one line
            try:
                check_drawable(model if model is not None else rollout.model)
            except ModelTooLarge as exc:
                print(f"rollrec video: note: {rollout.path.name}: the robot model is not drawn ({exc}); its links are "
                      "drawn as sticks", file=sys.stderr)
                args.style = "sticks"
        for e in [args.env] if args.envs is None else args.envs:
            note = missing_note(rollout, e % rollout.N) if -rollout.N <= e < rollout.N and (image is None or args.beside) else None
            if note:
                print(f"rollrec video: {note}", file=sys.stderr)
        result = render_rollout(
            rollout,
            out,
            env=args.env,
            envs=args.envs,
            camera=view,
            image=image,
            beside=args.beside,
            size=args.size,
            fps=args.fps,
            start=args.start,
            stop=args.stop,
            per_env=args.per_env,
            overlay=not args.no_overlay,
            style=args.style,
            model=model,
            progress=not args.quiet and sys.stderr.isatty(),
            **options,
        )
    for path in result if isinstance(result, list) else [result]:
        print(path)
    return 0

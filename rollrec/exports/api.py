"""`export`: a rollout to another tool's format, the one entry point of `rollrec export`."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rollrec.exports.cameras import Camera, cameras as rollout_cameras, frame_rows
from rollrec.exports.fields import step_fields
from rollrec.exports.selection import Selection, keep_rows_held, select_episodes
from rollrec.exports.staging import staged_output
from rollrec.io.protocol import ReadableRollout

#: ``to=`` targets, with what each writes.
TARGETS = {
    "lerobot": "a LeRobot v3.0 dataset (a directory)",
    "robomimic": "a robomimic HDF5 file",
    "rerun": "a Rerun recording (.rrd)",
    "viser": "a viser scene recording of one episode (.viser, or .html: a self-contained page)",
}


def _progress(total: int, desc: str, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="step", unit_scale=True, disable=not enabled, leave=False,
                dynamic_ncols=True, file=sys.stderr)


def _pick_cameras(r: ReadableRollout, names: Sequence[str] | None) -> list[Camera]:
    have = rollout_cameras(r)
    if names is None:
        return have
    by_name = {c.name: c for c in have}
    missing = [n for n in names if n not in by_name]
    if missing:
        raise KeyError(f"{r.path.name} has no camera {missing[0]!r} (cameras: {', '.join(by_name) or 'none'})")
    return [by_name[n] for n in names]


def export(rollout: ReadableRollout | str | os.PathLike, out: str | os.PathLike, *, to: str,
           envs: Sequence[int] | None = None, episodes: str = "all", min_return: float | None = None,
           cameras: Sequence[str] | None = None, fps: float | None = None, task: str | None = None,
           lossless_video: bool = False, env: int = 0, episode: int = 0, overwrite: bool = False,
           progress: bool = False, allow_pickle: bool = False, note: Callable[[str], None] | None = None) -> Path:
    """Write ``rollout`` (an opened rollout, or a path for `rollrec.load`) as ``to`` at ``out``; returns ``out``.

    Targets (`TARGETS`): ``"lerobot"`` (``out`` a directory), ``"robomimic"`` (an ``.hdf5``),
    ``"rerun"`` (an ``.rrd``), ``"viser"`` (a ``.viser`` or a self-contained ``.html``).

    Which episodes: ``envs`` (default every env; for ``"rerun"`` env 0), ``episodes`` (``"all"``,
    ``"terminated"``, ``"truncated"``, ``"unfinished"``, ``"captured"``) and ``min_return`` (episodes
    whose return is at least this); ``"viser"`` writes one episode: the ``episode``-th (negative
    counts from the end) of env ``env`` among those. ``cameras``: names to carry (default all;
    ``[]`` none). ``fps`` (default ``1 / dt``) and ``task`` (default the env's name): LeRobot's.
    ``lossless_video``: cameras as lossless H.264 (RGB) instead of the default lossy H.264.

    The output is written under a temporary name and renamed when complete; an existing ``out``
    is an error unless ``overwrite``. Memory stays bounded whatever the rollout's size (the
    rollout is read in blocks, `rollrec.exports.reading`). ``progress`` shows a progress bar on
    stderr; ``note`` receives one-line remarks (episodes left out). A field the target cannot hold
    raises ValueError naming it; a missing optional package raises
    `rollrec.exports.deps.MissingExtraError` with the ``pip install`` line.
    """
    if to not in TARGETS:
        raise ValueError(f"unknown export target {to!r}; choose one of {', '.join(TARGETS)}")
    if isinstance(rollout, (str, os.PathLike)):
        from rollrec.io.opening import load

        with load(rollout, allow_pickle=allow_pickle) as r:
            return export(r, out, to=to, envs=envs, episodes=episodes, min_return=min_return, cameras=cameras,
                          fps=fps, task=task, lossless_video=lossless_video, env=env, episode=episode,
                          overwrite=overwrite, progress=progress, note=note)
    r = rollout
    cams = _pick_cameras(r, cameras)
    fields = step_fields(r)
    if to == "lerobot":
        from rollrec.exports.to_lerobot import check_fps, write_lerobot

        rate = check_fps(r.dt, fps)
        selection = _select(r, envs, episodes, min_return, [f.key for f in fields], cams, note)
        with staged_output(out, directory=True, overwrite=overwrite) as tmp, \
                _progress(selection.rows, "lerobot", progress) as bar:
            write_lerobot(r, tmp, selection, fields, cams, fps=rate, task=task or r.env_name,
                          lossless_video=lossless_video, advance=bar.update)
    elif to == "robomimic":
        from rollrec.exports.to_robomimic import write_robomimic

        selection = _select(r, envs, episodes, min_return, [f.key for f in fields], cams, note)
        with staged_output(out, directory=False, overwrite=overwrite) as tmp, \
                _progress(selection.rows, "robomimic", progress) as bar:
            write_robomimic(r, tmp, selection, fields, cams, advance=bar.update)
    elif to == "rerun":
        from rollrec.exports.to_rerun import POSE_KEYS, write_rerun

        keys = [k for k in POSE_KEYS if k in r] + (["rew_terms"] if "rew_terms" in r else []) + ["rew"]
        selection = _select(r, [0] if envs is None else envs, episodes, min_return, keys, cams, note)
        with staged_output(out, directory=False, overwrite=overwrite) as tmp, \
                _progress(selection.rows, "rerun", progress) as bar:
            write_rerun(r, tmp, selection, cams, advance=bar.update)
    else:
        from rollrec.exports.to_viser import POSE_KEYS as VISER_KEYS, pick_episode, write_viser

        keys = [k for k in VISER_KEYS if k in r]
        chosen = pick_episode(_select(r, [env], episodes, min_return, keys, [], note), env, episode, r)
        with staged_output(out, directory=False, overwrite=overwrite) as tmp, \
                _progress(chosen.length, "viser", progress) as bar:
            write_viser(r, tmp, chosen, html=Path(out).suffix.lower() in (".html", ".htm"), advance=bar.update)
    return Path(out)


def _members(cams: Sequence[Camera]) -> list[str]:
    return [c.member for c in cams if c.member is not None]


def _select(r: ReadableRollout, envs: Sequence[int] | None, episodes: str, min_return: float | None,
            keys: Sequence[str], cams: Sequence[Camera], note: Callable[[str], None] | None) -> Selection:
    """The episodes to export: rows that hold every member in ``keys`` and every camera's frames."""
    selection = select_episodes(r, envs=envs, episodes=episodes, min_return=min_return,
                                keys=list(keys) + _members(cams))
    for cam in cams:
        if cam.member is None:  # a camera stream: its frames' own rows
            selection = keep_rows_held(selection, lambda env, cam=cam: frame_rows(r, cam, env))
    if note is not None and selection.note():
        note(selection.note())
    if not selection.episodes:
        raise ValueError(f"{r.path.name}: no episode matches (envs, --episodes {episodes}"
                         f"{'' if min_return is None else f', --min-return {min_return:g}'})")
    return selection


__all__ = ["TARGETS", "export"]

"""Export chosen envs of a rollout as a Rerun recording (``.rrd``), opened with ``rerun out.rrd``.

Entities (world frame, z up)::

    world/terrain/static_<i>          the model's static geoms (static)
    envs/<env>/base                   Transform3D per step (base_pos, base_quat), with axes
    envs/<env>/links/<link>           Transform3D per step (link_pos, link_quat); under it the
                                      model's geometry as Mesh3D parts (static), or a point
    envs/<env>/trail                  LineStrips3D: the base path of the episode under way,
                                      logged at the episode's first step
    envs/<env>/reward/total, envs/<env>/reward/<term>   Scalars per step (rew, rew_terms)
    envs/<env>/cameras/<camera>       Image per step
    envs/<env>/episodes               TextLog at each episode's first step (how it ended, return)

Timelines: ``step`` (the rollout's row, a sequence) and ``time`` (``row * dt``, a duration).
Rerun quaternions are xyzw; the rollout's are wxyz (converted). Missing poses (NaN, format v2)
are left out. Per-step data goes out in columns (`rerun.send_columns`), one call per entity and
piece of rows, streamed to the file as it is written (the file sink), so memory stays bounded.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rollrec.exports.cameras import Camera, read_frames
from rollrec.exports.deps import require
from rollrec.exports.reading import BlockReader
from rollrec.exports.selection import Episode, Selection
from rollrec.io.protocol import ReadableRollout

#: The pose members the recording reads (with ``rew`` and ``rew_terms``).
POSE_KEYS = ("base_pos", "base_quat", "link_pos", "link_quat")


def entity_name(name: str) -> str:
    """A link, term or camera name as one entity path part (``/`` and spaces replaced)."""
    return name.replace("/", "_").replace(" ", "_") or "_"


def wxyz_to_xyzw(q: np.ndarray) -> np.ndarray:
    return np.concatenate([q[..., 1:], q[..., :1]], axis=-1)


def write_rerun(r: ReadableRollout, path: Path, selection: Selection, cams: Sequence[Camera], *,
                advance: Callable[[int], None] = lambda n: None) -> None:
    """Write the recording of ``selection``'s episodes to ``path``."""
    rr = require("rerun", "rerun")
    rec = rr.RecordingStream("rollrec", recording_id=str(uuid.uuid4()))
    rec.save(str(path))
    try:
        rec.send_recording_name(f"{r.path.name} ({r.env_name})")
        rec.log("world", rr.ViewCoordinates.RIGHT_HAND_Z_UP, static=True)
        model = r.model
        parts = []
        if model is not None:
            from rollrec.model.shapes import link_parts

            parts = link_parts(model, detail=16, planes=False)
            for i, p in enumerate(q for q in parts if q.link < 0):
                rec.log(f"world/terrain/static_{i}", _mesh(rr, p), static=True)
        keys = [k for k in (*POSE_KEYS, "rew", "rew_terms") if k in r]
        reader = BlockReader(r, keys, selection.envs)
        drawn: set[int] = set()
        for ep in selection.episodes:
            if ep.env not in drawn:
                _static_env(rr, rec, r, ep.env, [p for p in parts if p.link >= 0])
                drawn.add(ep.env)
            _episode(rr, rec, r, reader, ep, cams, advance)
        rec.flush()
    finally:
        rec.disconnect()


def _mesh(rr: Any, part: Any) -> Any:
    rgba = np.clip(np.asarray(part.rgba) * 255, 0, 255).astype(np.uint8)
    return rr.Mesh3D(vertex_positions=part.vertices, triangle_indices=part.faces, albedo_factor=rgba)


def _static_env(rr: Any, rec: Any, r: ReadableRollout, env: int, parts: list[Any]) -> None:
    """What of env ``env`` does not change: the base's axes, the robot's geometry under its links."""
    rec.log(f"envs/{env}/base", rr.TransformAxes3D(0.3), static=True)
    if not r.link_names or "link_pos" not in r:
        return
    links = [entity_name(n) for n in r.link_names]
    if parts:
        for i, p in enumerate(parts):
            rec.log(f"envs/{env}/links/{links[p.link]}/part_{i}", _mesh(rr, p), static=True)
    else:
        for name in links:
            rec.log(f"envs/{env}/links/{name}/origin", rr.Points3D([[0.0, 0.0, 0.0]], radii=0.02), static=True)


def _send_poses(rr: Any, rec: Any, entity: str, rows: np.ndarray, dt: float, pos: np.ndarray,
                quat: np.ndarray | None) -> None:
    ok = np.isfinite(pos).all(-1) & (np.isfinite(quat).all(-1) if quat is not None else True)
    if not ok.any():
        return
    cols = {"translation": pos[ok]}
    if quat is not None:
        cols["quaternion"] = wxyz_to_xyzw(quat[ok])
    rec.send_columns(entity, indexes=_times(rr, rows[ok], dt), columns=rr.Transform3D.columns(**cols))


def _times(rr: Any, rows: np.ndarray, dt: float) -> list[Any]:
    return [rr.TimeColumn("step", sequence=rows), rr.TimeColumn("time", duration=rows * dt)]


def _episode(rr: Any, rec: Any, r: ReadableRollout, reader: BlockReader, ep: Episode, cams: Sequence[Camera],
             advance: Callable[[int], None]) -> None:
    env, dt = ep.env, r.dt
    prefix = f"envs/{env}"
    links = [entity_name(n) for n in r.link_names or []]
    terms = [entity_name(n) for n in r.reward_term_names]
    trail = []
    rec.set_time("step", sequence=ep.row_start)
    rec.set_time("time", duration=ep.row_start * dt)
    rec.log(f"{prefix}/episodes", rr.TextLog(f"env {env}: episode of steps {ep.start}..{ep.stop} ({ep.end}, "
                                             f"return {ep.ret:.4g})"))
    for t, d in reader.chunks(ep):
        n = len(d["rew"])
        rows = np.arange(t, t + n, dtype=np.int64)
        base = np.asarray(d["base_pos"], np.float64)
        _send_poses(rr, rec, f"{prefix}/base", rows, dt, base, np.asarray(d["base_quat"], np.float64))
        trail.append(base)
        if "link_pos" in d:
            quat = d.get("link_quat")
            for i, name in enumerate(links):
                _send_poses(rr, rec, f"{prefix}/links/{name}", rows, dt, np.asarray(d["link_pos"][:, i], np.float64),
                            None if quat is None else np.asarray(quat[:, i], np.float64))
        rec.send_columns(f"{prefix}/reward/total", indexes=_times(rr, rows, dt),
                         columns=rr.Scalars.columns(scalars=np.asarray(d["rew"], np.float64)))
        if "rew_terms" in d:
            for k, name in enumerate(terms):
                rec.send_columns(f"{prefix}/reward/{name}", indexes=_times(rr, rows, dt),
                                 columns=rr.Scalars.columns(scalars=np.asarray(d["rew_terms"][:, k], np.float64)))
        for cam in cams:
            frames = read_frames(r, cam, env, (t, t + n))
            for row, frame in zip(rows, frames):
                rec.set_time("step", sequence=int(row))
                rec.set_time("time", duration=float(row * dt))
                rec.log(f"{prefix}/cameras/{entity_name(cam.name)}", rr.Image(frame) if cam.is_rgb else rr.DepthImage(frame))
        advance(n)
    path = np.concatenate(trail)
    path = path[np.isfinite(path).all(1)]
    if len(path) > 1:
        rec.set_time("step", sequence=ep.row_start)
        rec.set_time("time", duration=ep.row_start * dt)
        rec.log(f"{prefix}/trail", rr.LineStrips3D([path], colors=[255, 140, 0]))


__all__ = ["POSE_KEYS", "entity_name", "write_rerun", "wxyz_to_xyzw"]

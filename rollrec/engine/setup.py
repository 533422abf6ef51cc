"""What the first `record` decides: the ring, the segment length, the file's members and meta.

`plain_setup` is a recording that keeps everything (format v1, as rollrec always wrote it);
`volume_setup` one with volume options (`rollrec.engine.volume`): it plans the fields, sizes the
segments so one segment's rings, window rows and episode buffers stay within
``max_segment_bytes``, allocates `rollrec.engine.volume_record.VolumeRings` and describes the
file (format version, ``meta`` entries of `rollrec.format.v2`).

Cameras (`rollrec.engine.images`) are ring fields like the others, but their rows reach the file
encoded: each kept camera has a packets and an index member (variable: their own row counts)
instead of a member of raw rows, ``meta["images"]`` describes its stream, and the file is
format version 3 (`rollrec.format.images`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from rollrec.engine.flush import RingBuffers
from rollrec.engine.images import ImageStreams, image_streams
from rollrec.engine.options import Images
from rollrec.engine.schema import NUMPY_DTYPES, Schema
from rollrec.engine.volume import FieldPlan, VolumePlan, file_version, plan
from rollrec.engine.volume_record import VolumeRings
from rollrec.format.images import IMAGES_VERSION
from rollrec.format.v2 import COLUMNS
from rollrec._npz.layout import MemberSpec


@dataclass
class Setup:
    """The recording's layout, fixed at the first `record`."""

    ring: RingBuffers  # flushed to the host whole, one segment at a time
    segment: int  # kept rows per segment
    members: list[MemberSpec]
    constants: dict[str, np.ndarray]  # members written as repeated rows with every job
    kept: set[str]  # member names kept (fields and constants)
    version: int = 1  # the file's format version
    meta: dict[str, Any] = field(default_factory=dict)  # meta entries describing the kept data
    variable: list[str] = field(default_factory=list)  # members with their own row counts
    rings: VolumeRings | None = None  # with volume options
    images: ImageStreams | None = None  # with cameras


def _segment(step_bytes: int, segment_steps: int, max_segment_bytes: int | None, max_rows: int | None) -> int:
    seg = segment_steps
    if max_segment_bytes:
        seg = max(1, min(seg, max_segment_bytes // max(step_bytes, 1)))
    return seg if max_rows is None else min(seg, max_rows)


def plain_setup(schema: Schema, *, device: torch.device, segment_steps: int, max_segment_bytes: int | None,
                max_steps: int | None, ring_segments: int, images: Images) -> Setup:
    """Every field of every env at every step, in the dtypes given."""
    N = schema.N
    if any(s.env_rows != N for s in schema.cameras):
        raise ValueError("record(): a camera gave fewer images than N: that is for the detail envs of envs=, which was not given")
    # cat/stack write with out=: the ring dtype must be what they produce.
    step_bytes = sum(N * int(np.prod(s.row_shape, dtype=np.int64)) * s.ring_dtype.itemsize for s in schema.fields)
    seg = _segment(step_bytes, segment_steps, max_segment_bytes, max_steps)
    ring = RingBuffers({s.name: (s.row_shape, s.ring_dtype) for s in schema.fields}, seg * ring_segments, N, device)
    constants = {
        name: np.broadcast_to(np.asarray(value, dtype=dtype), (N, *row))
        for name, (dtype, row, value) in schema.constants.items()
    }
    members = [MemberSpec(s.name, s.np_dtype.str, (N, *s.row_shape), max_steps or seg * 16)
               for s in schema.fields if not s.is_camera]
    members += [MemberSpec(name, value.dtype.str, value.shape, max_steps or seg * 16) for name, value in constants.items()]
    streams = image_streams([(s.name, "all", s.row_shape, s.np_dtype, N) for s in schema.cameras], images)
    setup = Setup(ring, seg, members, constants, {s.name for s in schema.fields} | set(schema.constants))
    return _with_images(setup, streams, max_steps, default_rows=seg * 16, window_rows=0)


def _with_images(setup: Setup, streams: ImageStreams | None, rows: int | None, *, default_rows: int,
                 window_rows: int) -> Setup:
    """``setup`` with the cameras' members, ``meta`` and version, when there are cameras."""
    if streams is None:
        return setup
    members, variable = streams.members(rows, default_rows, window_rows)
    setup.members += members
    setup.variable += variable
    setup.meta.update(streams.meta())
    setup.version = IMAGES_VERSION
    setup.images = streams
    return setup


def volume_setup(volume: VolumePlan, schema: Schema, *, device: torch.device, segment_steps: int,
                 max_segment_bytes: int | None, max_steps: int | None, ring_segments: int, images: Images) -> Setup:
    """What ``volume`` keeps (see the module docstring)."""
    plans, constants = plan(volume, schema)
    k, N = volume.every, schema.N
    M = len(volume.envs) if volume.envs is not None else N

    def row_bytes(p: FieldPlan) -> int:
        return (M if p.where == "detail" else N) * int(np.prod(p.row_shape, dtype=np.int64)) * p.dtype.itemsize

    step_bytes = sum(row_bytes(p) for p in plans) + (k * N * 12 if volume.has_index else 0)
    rows = None if max_steps is None else -(-max_steps // k)
    seg = _segment(step_bytes, segment_steps, max_segment_bytes, rows)
    rings = VolumeRings(volume, schema, plans, constants, segment=seg, ring_segments=ring_segments, device=device)
    window_rows = (volume.window or 1) * 64
    members, variable = rings.members(schema, rows or seg * 16, index_rows=max(2 * N, 1024), window_rows=window_rows)
    streams = image_streams([(p.name, p.where, p.row_shape, NUMPY_DTYPES[p.dtype], M if p.where == "detail" else N if p.where == "all" else 1)
                             for p in plans if schema.fields[p.index].is_camera], images)
    meta: dict[str, Any] = {"volume": volume.describe()}
    if k > 1:
        meta["every"] = k
    detail = [p.name for p in plans if p.where == "detail"] + [n for n, w in constants.items() if w == "detail"]
    if detail:
        meta["env_ids"] = {name: list(volume.envs) for name in detail}
    if volume.trigger is not None:
        window = [p.name for p in plans if p.where == "window"] + [n for n, w in constants.items() if w == "window"]
        meta["windows"] = {"members": window, "window": volume.window, "capture": volume.trigger.describe()}
    if volume.has_index:
        meta["episode_columns"] = list(COLUMNS)
    setup = Setup(rings.ring, seg, members, rings.constant_rows(schema)[0], {p.name for p in plans} | set(constants),
                  version=file_version(volume, plans, constants), meta=meta, variable=variable, rings=rings)
    return _with_images(setup, streams, rows, default_rows=seg * 16, window_rows=window_rows)


__all__ = ["Setup", "plain_setup", "volume_setup"]

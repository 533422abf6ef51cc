"""The device side of volume control: one recorded step into the rings, kept fields only.

`VolumeRings` owns, on the recording device:

- the flushed ring ``[C, N or M, *row]`` (C = segment x ring segments) of the fields kept for
  ``"all"`` envs and for the ``"detail"`` envs (M of them), copied to the host whole by the
  flush pipeline, cast to their stored dtype as they are written;
- with ``capture=``, the window ring ``[W - 1 + C, N, *row]`` of the ``"window"`` fields of
  every env: the last W kept rows of any env's episode are still in it when the writer thread
  gathers a captured window (see `rollrec.engine.gather`), because a segment is recorded into
  again only once its jobs are released. It is the one large cost of the trigger:
  ``(W - 1 + C) x N x (bytes of the window fields per env)``;
- the `EpisodeTracker` (index entries), when the file has an episode index.

`step` writes recorded step ``t``: the first step of a kept row copies every kept field (for
detail fields, ``index_select`` of the detail envs, or a slice when they are contiguous); the
other ``every - 1`` steps fold ``rew``/``rew_terms`` (sum) and ``done``/``truncated`` (OR) into
the row. A fixed sequence of device ops whatever the data: no sync.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from rollrec.engine.cuda_host import host_to_device
from rollrec.engine.episodes import EpisodeTracker
from rollrec.engine.flush import RingBuffers
from rollrec.engine.gather import COLUMNS, EpisodeGather
from rollrec.engine.schema import NUMPY_DTYPES, FieldSpec, Schema
from rollrec.engine.volume import FieldPlan, VolumePlan
from rollrec._npz.layout import MemberSpec


class VolumeRings:
    """Rings, window ring and episode tracker of a recording with volume options; see the module docstring."""

    def __init__(self, volume: VolumePlan, schema: Schema, plans: Sequence[FieldPlan], constants: Mapping[str, str],
                 *, segment: int, ring_segments: int, device: torch.device):
        self.volume = volume
        self.N = schema.N
        self.every = volume.every
        self.capacity = segment * ring_segments
        envs = volume.envs
        self.M = len(envs) if envs is not None else self.N
        flushed = [p for p in plans if p.where != "window"]
        windowed = [p for p in plans if p.where == "window"]
        self.ring = RingBuffers({p.name: (p.row_shape, p.dtype) for p in flushed}, self.capacity, self.N, device,
                                envs={p.name: self.M for p in flushed if p.where == "detail"})
        self.window_rows = (volume.window - 1 + self.capacity) if volume.trigger is not None else 0
        self.window = RingBuffers({p.name: (p.row_shape, p.dtype) for p in windowed}, self.window_rows, self.N, device)
        self.tracker = (EpisodeTracker(self.N, device, self.capacity, self.every, volume.trigger)
                        if volume.has_index else None)
        self.constants = dict(constants)
        self.device = device
        self._select: slice | torch.Tensor | None = None
        if envs is not None:
            contiguous = len(envs) > 0 and envs[-1] - envs[0] + 1 == len(envs)
            # Copied through pinned memory: the first record() does not wait either (sync debug mode).
            self._select = (slice(envs[0], envs[-1] + 1) if contiguous
                            else host_to_device(torch.tensor(envs, dtype=torch.long), device))
        names = [s.name for s in schema.fields]
        self._rew, self._done = names.index("rew"), names.index("done")
        self._trunc = names.index("truncated") if "truncated" in names else None
        # (plan, spec, slot views: flushed ring slot -> tensor, or window ring row -> tensor)
        self._writes: list[tuple[FieldPlan, FieldSpec, list[torch.Tensor]]] = []
        for p in plans:
            ring, pos = (self.window, windowed.index(p)) if p.where == "window" else (self.ring, flushed.index(p))
            self._writes.append((p, schema.fields[p.index], [slot[pos] for slot in ring.slots]))
        self._folds = [w for w in self._writes if w[0].fold is not None]

    @property
    def nbytes(self) -> int:
        """Device bytes held: rings, window ring and episode buffers."""
        return self.ring.nbytes + self.window.nbytes + (self.tracker.nbytes if self.tracker is not None else 0)

    # ---- one recorded step (main thread) ------------------------------------------------------
    def step(self, t: int, slot: int, sources: Sequence[Any], given: Mapping[str, Any]) -> None:
        """Write recorded step ``t``, which belongs to ring slot ``slot`` (kept row ``t // every``)."""
        row, sub = divmod(t, self.every)
        wslot = row % self.window_rows if self.window_rows else 0
        if sub == 0:
            for p, spec, views in self._writes:
                dst = views[wslot if p.where == "window" else slot]
                self._write(p, spec, sources[p.index], dst)
        else:
            for p, spec, views in self._folds:
                dst = views[wslot if p.where == "window" else slot]
                value = self._value(p, spec, sources[p.index])
                if p.fold == "sum":
                    dst.add_(value)
                else:
                    dst.logical_or_(value)
        if self.tracker is not None:
            trunc = sources[self._trunc] if self._trunc is not None else None
            self.tracker.step(slot, sub, t, sources[self._rew], sources[self._done], trunc, given)

    def end(self, steps: int, slot: int) -> None:
        """The recording ended after ``steps`` steps, the last in ring slot ``slot``."""
        sub = steps % self.every
        if sub and self.tracker is not None:
            self.tracker.end_early(slot, sub)

    def _full(self, spec: FieldSpec, src: Any, out: torch.Tensor | None = None) -> torch.Tensor:
        """``[N, *row]`` of one field for this step (``out``: write it there, cast to its dtype)."""
        if spec.kind == "copy":
            full = src if src.dim() == 1 + len(spec.row_shape) else src.reshape(self.N, *spec.row_shape)
            return full if out is None else out.copy_(full)
        if spec.kind == "cat":
            return torch.cat([s.reshape(self.N, -1) for s in src], dim=-1, out=out)
        return torch.stack(src, dim=-1, out=out)

    def _value(self, p: FieldPlan, spec: FieldSpec, src: Any) -> torch.Tensor:
        full = self._full(spec, src)
        if p.where != "detail" or (spec.env_rows is not None and spec.env_rows != self.N):
            return full  # every env's, or a camera that gave the detail envs' images only
        return full[self._select] if isinstance(self._select, slice) else full.index_select(0, self._select)

    def _write(self, p: FieldPlan, spec: FieldSpec, src: Any, dst: torch.Tensor) -> None:
        if p.where != "detail":
            self._full(spec, src, out=dst)
        else:
            dst.copy_(self._value(p, spec, src))

    # ---- what the writer needs ------------------------------------------------------------------
    def constant_rows(self, schema: Schema) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """``(flushed, window)`` constant members: ``[N or M, *row]`` arrays written with every
        job, and ``[*row]`` rows written with every window row."""
        flushed, window = {}, {}
        for name, (dtype, row, value) in schema.constants.items():
            where = self.constants.get(name)
            if where is None:
                continue
            if where == "window":
                window[name] = np.broadcast_to(np.asarray(value, dtype=dtype), row)
            else:
                flushed[name] = np.broadcast_to(np.asarray(value, dtype=dtype), (self.M if where == "detail" else self.N, *row))
        return flushed, window

    def members(self, schema: Schema, rows: int, *, index_rows: int, window_rows: int) -> tuple[list[MemberSpec], list[str]]:
        """The stream's members (in file directory order) and the names of the variable ones."""
        members, variable = [], []
        flushed_c, window_c = self.constant_rows(schema)
        for p, spec, _ in self._writes:
            if spec.is_camera:  # stored encoded: its members come from `rollrec.engine.images`
                continue
            dtype = NUMPY_DTYPES[p.dtype].str
            if p.where == "window":
                members.append(MemberSpec(p.name, dtype, p.row_shape, window_rows))
                variable.append(p.name)
            else:
                members.append(MemberSpec(p.name, dtype, (self.M if p.where == "detail" else self.N, *p.row_shape), rows))
        for name, value in flushed_c.items():
            members.append(MemberSpec(name, value.dtype.str, value.shape, rows))
        for name, value in window_c.items():
            members.append(MemberSpec(name, value.dtype.str, value.shape, window_rows))
            variable.append(name)
        if self.tracker is not None:
            members.append(MemberSpec("episodes", "<i8", (len(COLUMNS),), index_rows))
            members.append(MemberSpec("episode_return", "<f8", (), index_rows))
            variable += ["episodes", "episode_return"]
        return members, variable

    def gatherer(self, schema: Schema, transforms: Mapping[str, Callable[[np.ndarray], np.ndarray]],
                 encoders: Mapping[str, Any] | None = None) -> EpisodeGather | None:
        """The writer thread's `EpisodeGather`, or None without an episode index. ``encoders``:
        the cameras' (`rollrec.engine.images.CameraEncoder`), for their captured windows."""
        if self.tracker is None:
            return None
        v = self.volume
        captured = "trigger" if v.trigger is not None else "detail" if v.envs is not None else "all"
        detail = None
        if v.envs is not None:
            detail = np.zeros(self.N, bool)
            detail[list(v.envs)] = True
        return EpisodeGather(
            self.tracker, self.N, captured=captured, detail=detail, window=v.window, window_ring_rows=self.window_rows,
            window_ring=self.window.tensors, window_constants=self.constant_rows(schema)[1], transforms=transforms,
            device=self.device, encoders=encoders,
        )


__all__ = ["VolumeRings"]

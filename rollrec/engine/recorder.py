"""`Recorder`: record one step of N envs at a time into device ring buffers, stream to disk.

Memory is bounded by the ring (``ring_segments`` segments of ``segment_steps`` steps) plus, on
CUDA, ``staging_buffers`` pinned segments, whatever the rollout length. See `rollrec.engine.flush`
for how segments reach the disk and `rollrec.io.npz_stream` for how the file is laid out.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rollrec.engine.flush import FlushPipeline, RingBuffers
from rollrec.engine.schema import Schema
from rollrec.engine.shards import ShardSession
from rollrec.io.format import check_dt, check_obs_layout, make_meta, to_json, user_meta
from rollrec.io.model import model_members, remove_sidecar, save_sidecar
from rollrec.io.npz_stream import MemberSpec, NpzStreamWriter
from rollrec.io.writer import finish, partial_paths, static_members
from rollrec.model.robot import RobotModel


class Recorder:
    """Record a rollout of ``num_envs`` envs to the format-v1 file ``path``.

    Call `record` once per step; the first call fixes the fields, their shapes and dtypes, and
    the device (``device`` or, if None, the device of ``obs``). `close` (or leaving the ``with``
    block, even on an exception) finishes the file and returns its path; it then appears under
    ``path`` atomically. Until then data goes to ``path + ".partial"``: after a crash,
    `rollrec.recover` (``rollrec recover``) makes the flushed steps readable.

    Under ``torch.distributed`` with more than one rank, every rank constructs its Recorder with
    the same ``path`` and its own ``num_envs`` (both are collectives, see
    `rollrec.engine.shards`): ``path`` (``.npz`` suffix dropped) becomes a directory holding one
    shard file per rank and a ``manifest.json``, and `close` returns the directory on every rank.

    Args:
        path: the ``.npz`` to write.
        num_envs: N, the size of the env axis of every field.
        device: where the ring lives; defaults to the device of the first ``obs``.
        segment_steps: steps per segment; a full segment is flushed to disk asynchronously.
        max_segment_bytes: if set, segments are shortened so one holds at most this many bytes.
        ring_segments: segments in the ring (recording continues into one while another flushes).
        staging_buffers: pinned host segments for device-to-host copies (CUDA only).
        max_steps: the rollout length if known: the file is laid out once and every byte is
            written once. Without it (or past it), the file grows, which moves data.
        dt: seconds of simulated time per step, kept in ``meta``.
        env_name: kept in ``meta``.
        quat_order: the order of the quaternions given (``"wxyz"`` or ``"xyzw"``); the file is wxyz.
        link_names: names of the L links of ``link_pos``/``link_quat``.
        meta: extra entries for ``meta`` (e.g. ``link_parents``): JSON values; numpy scalars and
            arrays and paths are converted here. Entries rollrec derives (``num_steps``,
            ``num_envs``, ``dt``, ``format_version``, ...) and anything JSON cannot hold are
            refused with ValueError here, not when the file is finished.
        compress: deflate the file when closing (a second pass; the file is then read whole).
        video_envs: envs whose frames `record_frame` keeps when it gets a batch of all N
            renders (tiled, labelled ``env k``); None keeps every frame of the batch.
        video_fps: frame rate of that video (default ``1 / dt``).
        model: the robot's geometry (`rollrec.model.RobotModel`, e.g. `rollrec.model_from_mujoco`
            or `rollrec.model_from_urdf`), stored with the rollout so a replay needs no simulator;
            its links are matched to ``link_names`` by name. Checked at the first `record`.
        env_offset: under torch.distributed, the global id of this rank's first env (pass it on
            every rank or none; default: rank order). The ranks' env ranges must tile 0..N-1.
        distributed: None records a shard per rank when torch.distributed runs more than one
            rank; False writes a plain file whatever the process group (e.g. rank 0 alone).
        dist_timeout: seconds a rank waits for the others at construction and in `close`.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        num_envs: int,
        *,
        device: str | torch.device | None = None,
        segment_steps: int = 256,
        max_segment_bytes: int | None = 64 << 20,
        ring_segments: int = 2,
        staging_buffers: int = 2,
        max_steps: int | None = None,
        dt: float = 1.0 / 30.0,
        env_name: str = "unknown",
        quat_order: str = "wxyz",
        link_names: Sequence[str] | None = None,
        meta: Mapping[str, Any] | None = None,
        compress: bool = False,
        video_envs: Sequence[int] | None = None,
        video_fps: float | None = None,
        model: RobotModel | None = None,
        env_offset: int | None = None,
        distributed: bool | None = None,
        dist_timeout: float = 300.0,
    ):
        if num_envs < 1:
            raise ValueError(f"num_envs must be at least 1, got {num_envs}")
        if segment_steps < 1 or ring_segments < 2 or staging_buffers < 1:
            raise ValueError("segment_steps and staging_buffers must be >= 1, ring_segments >= 2")
        if quat_order not in ("wxyz", "xyzw"):
            raise ValueError(f"quat_order must be 'wxyz' or 'xyzw', got {quat_order!r}")
        if max_steps is not None and max_steps < 1:
            raise ValueError(f"max_steps must be at least 1, got {max_steps}")
        dt = check_dt(dt)
        self.path = Path(path)
        self.num_envs = int(num_envs)
        self.device = torch.device(device) if device is not None else None
        self.segment_steps = int(segment_steps)
        self.max_segment_bytes = max_segment_bytes
        self.ring_segments = int(ring_segments)
        self.staging_buffers = int(staging_buffers)
        self.max_steps = max_steps
        self.dt = float(dt)
        self.env_name = env_name
        self.quat_order = quat_order
        self.link_names = None if link_names is None else [to_json(str(n), "link_names") for n in link_names]
        to_json(str(env_name), "env_name")
        self.extra_meta = user_meta(meta or {})
        self.compress = compress
        self.video_envs = None if video_envs is None else [int(e) for e in video_envs]
        bad = [e for e in self.video_envs or [] if not 0 <= e < num_envs]
        if bad:
            raise ValueError(f"video_envs: env {bad[0]} out of range (0..{num_envs - 1})")
        self.video_fps = video_fps
        if model is not None and not isinstance(model, RobotModel):
            raise TypeError(f"model must be a rollrec.model.RobotModel, got {type(model).__name__}")
        self.model = model
        self._video = None
        self.steps = 0  # steps recorded (a host-side counter: never read from the device)
        self._schema: Schema | None = None
        self._pipeline: FlushPipeline | None = None
        self._stream: NpzStreamWriter | None = None
        self._seg = 0
        self._cap = 0
        self._flushed = 0
        self._closed = False
        self._result: Path | None = None
        # Sharded recording (torch.distributed, world size > 1): this rank writes one shard of a directory.
        self._shard = None if distributed is False else ShardSession.start(
            path, self.num_envs, env_offset=env_offset, dt=self.dt, env_name=env_name, timeout_s=dist_timeout
        )
        if self._shard is not None:
            self.path = self._shard.file
            self.extra_meta["shard"] = self._shard.meta
        elif distributed:
            raise ValueError("distributed=True, but torch.distributed is not initialised with more than one rank")

    # ---- recording ----------------------------------------------------------------------------
    def record(
        self,
        obs: Any = None,
        act: Any = None,
        rew: Any = None,
        done: Any = None,
        truncated: Any = None,
        base_pos: Any = None,
        base_quat: Any = None,
        reward_terms: Mapping[str, Any] | None = None,
        link_pos: Any = None,
        link_quat: Any = None,
        **extras: Any,
    ) -> None:
        """Copy one step of every env into the ring. Never synchronises with the device.

        ``obs [N, D]`` (or a dict of ``[N, ...]`` tensors, flattened in key order), ``act [N, A]``,
        ``rew [N]``, ``done [N]`` (episode ended after this step), ``truncated [N]``,
        ``base_pos [N, 3]``, ``base_quat [N, 4]``, ``reward_terms {name: [N]}``,
        ``link_pos [N, L, 3]``, ``link_quat [N, L, 4]``, extras ``[N, ...]``: tensors on the
        recording device, or numpy arrays. The values are copied: later in-place changes to
        them do not reach the file. A call that does not match the first raises ValueError
        and records nothing.
        """
        if self._closed:
            raise RuntimeError(f"record() after close(): {self.path} is finished")
        given = dict(
            obs=obs, act=act, rew=rew, done=done, truncated=truncated, base_pos=base_pos, base_quat=base_quat,
            reward_terms=reward_terms, link_pos=link_pos, link_quat=link_quat, **extras,
        )
        if self._schema is None:
            self._start(given)
        sources = self._schema.gather(given)
        slot = self.steps % self._cap
        if slot % self._seg == 0:
            self._pipeline.acquire(slot // self._seg)
        for spec, dst, src in zip(self._schema.fields, self._ring.slots[slot], sources):
            if spec.kind == "copy":
                dst.copy_(src if src.dim() == dst.dim() else src.reshape(dst.shape))
            elif spec.kind == "cat":
                torch.cat([s.reshape(self.num_envs, -1) for s in src], dim=-1, out=dst)
            else:
                torch.stack(src, dim=-1, out=dst)
        self.steps += 1
        if (slot + 1) % self._seg == 0:
            self._pipeline.flush(slot // self._seg, self._seg)
            self._flushed = self.steps

    def record_frame(self, frame: Any) -> None:
        """Add the env's render of the step just recorded to the video beside the rollout.

        ``frame``: one image ``[H, W, C]`` or a batch ``[N, H, W, C]`` (numpy or torch, uint8 or
        float in [0, 1]); a batch keeps ``video_envs``. Frames are copied and encoded on a
        background thread into ``<path stem>.mp4``; ``meta["video"]`` lists the file, its envs
        and the rollout step of every frame.
        """
        if self.steps == 0:
            raise RuntimeError("record_frame() before the first record(): a frame belongs to a recorded step")
        if self._video is None:
            from rollrec.video.background import BackgroundVideoWriter

            fps = self.video_fps or max(1.0, round(1.0 / self.dt, 3))
            self._video = BackgroundVideoWriter(self.video_path, fps, envs=self.video_envs)
            self._video_fps = fps
        self._video.submit(self.steps - 1, frame)

    @property
    def video_path(self) -> Path:
        """Where `record_frame` writes: ``run.npz`` -> ``run.mp4``."""
        return self.path.with_suffix(".mp4")

    def _close_video(self) -> None:
        if self._video is None:
            return
        steps = self._video.close()
        self._set_meta(video={
            "file": self.video_path.name, "envs": self.video_envs, "fps": self._video_fps, "steps": steps,
        })

    def _start(self, given: dict[str, Any]) -> None:
        obs = given.get("obs")
        if self.device is None:
            first = next(iter(obs.values())) if isinstance(obs, Mapping) and obs else obs
            self.device = first.device if isinstance(first, torch.Tensor) else torch.device("cpu")
        schema = Schema(self.num_envs, self.device, given)
        # cat/stack write with out=: the ring dtype must be what they produce.
        step_bytes = sum(
            self.num_envs * int(np.prod(s.row_shape, dtype=np.int64)) * s.ring_dtype.itemsize for s in schema.fields
        )
        seg = self.segment_steps
        if self.max_segment_bytes:
            seg = max(1, min(seg, self.max_segment_bytes // max(step_bytes, 1)))
        if self.max_steps is not None:
            seg = min(seg, self.max_steps)
        self._seg, self._cap = seg, seg * self.ring_segments
        ring = RingBuffers(
            {s.name: (s.row_shape, s.ring_dtype) for s in schema.fields}, self._cap, self.num_envs, self.device
        )
        link_count = next((s.row_shape[0] for s in schema.fields if s.name == "link_pos"), None)
        if link_count is not None and self.link_names is None:
            self.link_names = [f"link_{i}" for i in range(link_count)]
        if self.link_names is not None and link_count is not None and len(self.link_names) != link_count:
            raise ValueError(f"link_names has {len(self.link_names)} names but link_pos has {link_count} links")
        constants = {
            name: np.broadcast_to(np.asarray(value, dtype=dtype), (self.num_envs, *row))
            for name, (dtype, row, value) in schema.constants.items()
        }
        transforms = {}
        for s in schema.fields:
            if s.name == "rew_terms" and s.ring_dtype != torch.float32:
                transforms["rew_terms"] = lambda a: a.astype(np.float32)
            if self.quat_order == "xyzw" and s.name in ("base_quat", "link_quat"):
                transforms[s.name] = lambda a: a[..., [3, 0, 1, 2]]
        members = []
        for s in schema.fields:
            members.append(MemberSpec(s.name, s.np_dtype.str, (self.num_envs, *s.row_shape), self.max_steps or seg * 16))
        for name, value in constants.items():
            members.append(MemberSpec(name, value.dtype.str, value.shape, self.max_steps or seg * 16))
        if "obs_layout" in self.extra_meta:  # a flat obs the caller describes; a dict obs is described by rollrec
            if schema.obs_layout:
                raise ValueError("meta['obs_layout']: obs is a dict, so rollrec writes its layout; do not pass one")
            obs_dim = next(s.row_shape[0] for s in schema.fields if s.name == "obs")
            check_obs_layout(self.extra_meta["obs_layout"], obs_dim, "meta")
        self.meta = make_meta(
            num_steps=0, num_envs=self.num_envs, dt=self.dt, env_name=self.env_name, extras=schema.extras,
            **({"obs_layout": schema.obs_layout} if schema.obs_layout else {}),
        )
        self.meta.update(self.extra_meta)
        data_path, layout_path = partial_paths(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.model is not None:  # bound and checked now, kept beside the partial file for recovery
            stored_links = self.link_names if link_count is not None else None
            model_arrays, model_meta = model_members(self.model, stored_links)
            self.model = self.model.bind(stored_links or [])
            self.meta.update(model_meta)
            save_sidecar(self.path, model_arrays, model_meta)
        self._stream = NpzStreamWriter(
            data_path, members, layout_path=layout_path, recovery_info=self._recovery_info(schema)
        )
        self._pipeline = FlushPipeline(
            ring, seg, self._stream, constants=constants, transforms=transforms, staging_buffers=self.staging_buffers
        )
        self._ring = ring
        self._schema = schema

    def _recovery_info(self, schema: Schema) -> dict[str, Any]:
        return {
            "meta": self.meta,
            "rew_term_names": schema.reward_term_names,
            "link_names": self.link_names,
            "compress": self.compress,
        }

    # ---- info ---------------------------------------------------------------------------------
    @property
    def segment_length(self) -> int:
        """Steps per flushed segment (known after the first `record`)."""
        return self._seg

    @property
    def ring_bytes(self) -> int:
        """Bytes held by the ring buffers (0 before the first `record`)."""
        return self._ring.nbytes if self._schema is not None else 0

    def update_meta(self, **entries: Any) -> None:
        """Add entries to ``meta`` (written when the file is finished), checked and converted as
        the ``meta`` argument is: a bad entry raises ValueError here. Safe while recording: the
        writer thread only ever sees a finished copy of ``meta``."""
        if self._closed:
            raise RuntimeError(f"update_meta() after close(): {self.path} is finished")
        entries = user_meta(entries)
        self.extra_meta = {**self.extra_meta, **entries}
        if self._schema is not None:
            self._set_meta(**entries)

    def _set_meta(self, **entries: Any) -> None:
        """Replace ``meta`` by a copy holding ``entries`` (copy-on-write: the writer thread
        serialises the sidecar from the dict it was handed, which is never modified after)."""
        self.meta = {**self.meta, **entries}
        if self._stream is not None:
            self._stream.recovery_info = {**self._stream.recovery_info, "meta": self.meta}

    # ---- finishing ----------------------------------------------------------------------------
    def close(self) -> Path:
        """Flush what is left, finish the file and return its path. Idempotent.

        Sharded (torch.distributed): a collective; returns the rollout directory once every rank
        has closed and rank 0 has written the manifest (see `rollrec.engine.shards`).
        """
        if self._closed:
            if self._result is None:
                raise RuntimeError(f"{self.path}: closing failed earlier; run `rollrec recover {self.path}`")
            return self._result
        self._closed = True
        if self._shard is not None:
            self._result = self._shard.close(self._finish_file)
        else:
            self._result = self._finish_file()
        return self._result

    def _finish_file(self) -> Path:
        if self._schema is None:
            raise ValueError(f"{self.path}: nothing was recorded (record() was never called)")
        rows = self.steps - self._flushed
        if rows:
            self._pipeline.flush((self._flushed % self._cap) // self._seg, rows)
        self._pipeline.close()
        self._close_video()
        self._set_meta(num_steps=self.steps)
        small = static_members(self.meta, self._schema.reward_term_names,
                               self.link_names if "link_pos" in self._schema.args else None, self.model)
        result = finish(self._stream, small, self.steps, str(self.path), self.compress)
        remove_sidecar(self.path)
        return result

    def __enter__(self) -> "Recorder":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._closed or self._schema is None:
            if not self._closed and self._shard is not None:  # the other ranks wait for this one at close
                self._shard.abandon("it recorded nothing" + (f" ({exc_type.__name__}: {exc})" if exc_type else ""))
            self._closed = True
            return
        if exc_type is not None:
            self._set_meta(interrupted=exc_type.__name__)
        self.close()


__all__ = ["Recorder"]

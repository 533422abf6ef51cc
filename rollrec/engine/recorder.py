"""`Recorder`: record one step of N envs at a time into device ring buffers, stream to disk.

Memory is bounded by the ring (``ring_segments`` segments of ``segment_steps`` steps) plus, on
CUDA, ``staging_buffers`` pinned segments, whatever the rollout length. See `rollrec.engine.flush`
for how segments reach the disk, `rollrec._npz.stream` for how the file is laid out and
`rollrec.io.partial` for the files beside it while it is written (the recorder asks its
`PartialRecording` to begin, finish or release them; it never touches them itself).

What a kill loses: the steps recorded in the last ``flush_interval_s`` (a partial segment is
handed to the writer at least that often), plus what was handed over but not yet committed: the
writer's backlog when the disk is slower than the recording (at most the ring,
``ring_segments x segment_steps`` steps) and the rows of the commit in progress (a commit lasts as
long as syncing what was written takes).

A recorder dropped without `Recorder.close` is released all the same: its writer threads hold
no reference to it, so when it is garbage collected a finaliser (`weakref.finalize`) ends the
threads, commits what was handed to the writer, closes the file and gives up the lease, leaving
the committed steps for ``rollrec recover`` and saying so (a `RuntimeWarning`). One still
referenced at interpreter exit is finished there, as `close` would (a sharded one is left
recoverable instead: its close is a collective the other ranks may no longer join).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
import warnings
import weakref
from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rollrec._npz.stream import NpzStreamWriter
from rollrec.engine import dist_meta
from rollrec.engine.flush import FlushPipeline
from rollrec.engine.frames import FrameSink, video_file
from rollrec.engine.images import ImageStreams, check_options
from rollrec.engine.options import Images, Ring, Sharding, Storage, Video, Volume, gather
from rollrec.engine.schema import Schema, resolve_device
from rollrec.engine.serving import LiveServer, Serve
from rollrec.engine.setup import Setup, plain_setup, volume_setup
from rollrec.engine.shards import ShardSession
from rollrec.engine.start_state import StartDigest
from rollrec.engine.volume import VolumePlan
from rollrec.engine.volume_record import VolumeRings
from rollrec.format.meta import check_dt, check_obs_layout, make_meta, to_json, user_meta
from rollrec.io.model import model_members
from rollrec.io.partial import PartialRecording, static_members
from rollrec.model.robot import RobotModel


class Recorder:
    """Record a rollout of ``num_envs`` envs to the file ``path`` (format v1, or v2 with volume
    options: see `rollrec.format`).

    Call `record` once per step; the first call fixes the fields, their shapes and dtypes, and
    the device (``device`` or, if None, the device of ``obs``). `close` (or leaving the ``with``
    block, even on an exception) finishes the file and returns its path; it then appears under
    ``path`` atomically. Until then data goes to ``path + ".partial"``: after a crash,
    `rollrec.recover` (``rollrec recover``) makes the flushed steps readable. If the writer
    fails (disk full, folder removed), `record` or `close` raises and the recorder releases
    its thread, file and ring; the steps committed before the failure stay recoverable.

    Under ``torch.distributed`` with more than one rank, every rank constructs its Recorder with
    the same ``path`` and its own ``num_envs`` (both are collectives, see
    `rollrec.engine.shards`): ``path`` (``.npz`` suffix dropped) becomes a directory holding one
    shard file per rank and a ``manifest.json``, and `close` returns the directory on every rank.

    Args:
        path: the ``.npz`` to write.
        num_envs: N, the size of the env axis of every field.
        device: where the ring lives; defaults to the device of the first ``obs``. ``"cuda"``
            is the current CUDA device at the first `record`.
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
        model: the robot's geometry (`rollrec.model.RobotModel`, e.g. `rollrec.model_from_mujoco`
            or `rollrec.model_from_urdf`), stored with the rollout so a replay needs no simulator;
            its links are matched to ``link_names`` by name. Checked at the first `record`.
        volume: what is kept (`Volume`: ``envs``, ``all_env_fields``, ``every``, ``dtypes``,
            ``fields``, ``capture``, ``window``).
        ring: device memory (`Ring`: ``segment_steps``, ``max_segment_bytes``, ``ring_segments``,
            ``staging_buffers``).
        storage: how the file is written (`Storage`: ``compress``, ``overwrite``, ``durable``,
            ``direct_io``, ``flush_interval_s``).
        video: the frames of `record_frame` (`Video`: ``envs``, ``fps``, ``sink``).
        images: the camera images of ``record(images=...)`` (`Images`: ``quality`` ``"lossy"`` or
            ``"lossless"``, ``crf``, ``preset``, ``keyframe_interval``, ``threads``).
        sharding: a recording across ranks (`Sharding`: ``env_offset``, ``distributed``,
            ``dist_timeout``).
        serve: serve the live replay of this recording while it is written: True
            (http://127.0.0.1:8080), a port, ``"host:port"`` or a `rollrec.engine.serving.Serve`.
            It starts with the first `record`, runs in a child process (``rollrec replay``, which
            follows the file: the recording loop shares nothing with it) and keeps serving the
            finished file until this process exits or ``rec.server.close()``. Sharded: rank 0
            serves the whole recording.
        **options: any option of those groups by its own name (``every=4``, ``compress=True``,
            ``video_envs=[0, 1]``, ``image_quality="lossless"``, ...: `rollrec.engine.options`), instead of
            its group.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        num_envs: int,
        *,
        device: str | torch.device | None = None,
        max_steps: int | None = None,
        dt: float = 1.0 / 30.0,
        env_name: str = "unknown",
        quat_order: str = "wxyz",
        link_names: Sequence[str] | None = None,
        meta: Mapping[str, Any] | None = None,
        model: RobotModel | None = None,
        volume: Volume | None = None,
        ring: Ring | None = None,
        storage: Storage | None = None,
        video: Video | None = None,
        images: Images | None = None,
        sharding: Sharding | None = None,
        serve: bool | int | str | Serve | None = None,
        **options: Any,
    ):
        groups = gather({"volume": volume, "ring": ring, "storage": storage, "video": video, "images": images,
                         "sharding": sharding}, options)
        self.images_options = check_options(groups["images"])
        self._check_arguments(num_envs, groups["ring"], quat_order, max_steps)
        dt = check_dt(dt)
        self._set_ring(groups["ring"], max_steps)
        self._set_storage(groups["storage"])
        self.num_envs = int(num_envs)
        self.device = torch.device(device) if device is not None else None
        self.dt = float(dt)
        self._set_contents(env_name, quat_order, link_names, meta, model)
        self._set_video(groups["video"])
        self._plan_volume(groups["volume"], groups["sharding"])
        self._reset_state()
        # Sharded recording (torch.distributed, world size > 1): this rank writes one shard of a directory.
        self._join_shards(path, groups["sharding"])
        self._partial = PartialRecording(self.path)
        self._partial.check_not_interrupted(overwrite=self.overwrite)  # this rank's file when sharded
        self._serve = Serve.of(serve)
        #: The live replay's child process (`serve`), from the first `record`; None without one.
        self.server: LiveServer | None = None

    # ---- construction, step by step -----------------------------------------------------------
    @staticmethod
    def _check_arguments(num_envs: int, ring: Ring, quat_order: str, max_steps: int | None) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs must be at least 1, got {num_envs}")
        if ring.segment_steps < 1 or ring.ring_segments < 2 or ring.staging_buffers < 1:
            raise ValueError("segment_steps and staging_buffers must be >= 1, ring_segments >= 2")
        if quat_order not in ("wxyz", "xyzw"):
            raise ValueError(f"quat_order must be 'wxyz' or 'xyzw', got {quat_order!r}")
        if max_steps is not None and max_steps < 1:
            raise ValueError(f"max_steps must be at least 1, got {max_steps}")

    def _set_ring(self, ring: Ring, max_steps: int | None) -> None:
        self.segment_steps = int(ring.segment_steps)
        self.max_segment_bytes = ring.max_segment_bytes
        self.ring_segments = int(ring.ring_segments)
        self.staging_buffers = int(ring.staging_buffers)
        self.max_steps = max_steps

    def _set_storage(self, storage: Storage) -> None:
        flush_interval_s = storage.flush_interval_s
        if flush_interval_s is not None and not flush_interval_s > 0:
            raise ValueError(f"flush_interval_s must be positive or None, got {flush_interval_s}")
        self.overwrite = storage.overwrite
        self.durable = storage.durable
        self.direct_io = storage.direct_io
        self.compress = storage.compress
        self.flush_interval_s = flush_interval_s
        # No flush interval: a deadline that never comes (one comparison per step either way).
        self._interval = float("inf") if flush_interval_s is None else float(flush_interval_s)
        self._flush_deadline = float("inf")

    def _set_contents(self, env_name: str, quat_order: str, link_names: Sequence[str] | None,
                      meta: Mapping[str, Any] | None, model: RobotModel | None) -> None:
        self.env_name = env_name
        self.quat_order = quat_order
        self.link_names = None if link_names is None else [to_json(str(n), "link_names") for n in link_names]
        to_json(str(env_name), "env_name")
        self.extra_meta = user_meta(meta or {})
        if model is not None and not isinstance(model, RobotModel):
            raise TypeError(f"model must be a rollrec.model.RobotModel, got {type(model).__name__}")
        self.model = model

    def _set_video(self, video: Video) -> None:
        self.video_envs = None if video.envs is None else [int(e) for e in video.envs]
        bad = [e for e in self.video_envs or [] if not 0 <= e < self.num_envs]
        if bad:
            raise ValueError(f"video_envs: env {bad[0]} out of range (0..{self.num_envs - 1})")
        self.video_fps = video.fps
        self._video_sink = video.sink or video_file

    def _plan_volume(self, volume: Volume, sharding: Sharding) -> None:
        self.volume = volume
        self._plan = VolumePlan.from_options(self.num_envs, volume)
        self._every = self._plan.every if self._plan is not None else 1
        if self._plan is not None and self._plan.has_index and sharding.distributed is not False and dist_meta.world() is not None:
            raise ValueError(
                "envs=, every= and capture= are not supported for a recording sharded across torch.distributed ranks "
                "yet (dtypes= and fields= are); record each rank with distributed=False, or without them"
            )

    def _reset_state(self) -> None:
        self._vol: VolumeRings | None = None
        self._gather = None
        self._images: ImageStreams | None = None
        self._video: FrameSink | None = None
        self.steps = 0  # steps recorded (a host-side counter: never read from the device)
        self._schema: Schema | None = None
        self._pipeline: FlushPipeline | None = None
        self._stream: NpzStreamWriter | None = None
        self._seg = 0
        self._cap = 0
        self._flushed = 0
        self._closed = False
        self._result: Path | None = None
        self._failure: str | None = None  # why close() failed, repeated by a later close()
        self._ring_bytes = 0
        self._dropped: _Resources | None = None  # what the finaliser releases if this recorder is dropped
        self._finalizer: weakref.finalize | None = None
        self._start_digest: StartDigest | None = None  # until its entry is in meta

    def _join_shards(self, path: str | os.PathLike, sharding: Sharding) -> None:
        """Join the other ranks' recording (a collective) when torch.distributed runs several."""
        self.path = Path(path)
        self._shard = None if sharding.distributed is False else ShardSession.start(
            path, self.num_envs, env_offset=sharding.env_offset, dt=self.dt, env_name=self.env_name,
            timeout_s=sharding.dist_timeout,
        )
        if self._shard is not None:
            self.path = self._shard.file
            self.extra_meta["shard"] = self._shard.meta
        elif sharding.distributed:
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
        images: Mapping[str, Any] | None = None,
        **extras: Any,
    ) -> None:
        """Copy one step of every env into the ring. Never synchronises with the device.

        ``obs [N, D]`` (or a dict of ``[N, ...]`` tensors, flattened in key order), ``act [N, A]``,
        ``rew [N]``, ``done [N]`` (episode ended after this step), ``truncated [N]``,
        ``base_pos [N, 3]``, ``base_quat [N, 4]``, ``reward_terms {name: [N]}``,
        ``link_pos [N, L, 3]``, ``link_quat [N, L, 4]``, ``images {camera: [N, H, W] or [N, H, W, C]}``
        (what the policy saw: uint8 RGB ``[N, H, W, 3]``, depth ``uint16``/``float32 [N, H, W]``,
        segmentation, any numeric dtype; with ``envs=`` also the detail envs' only,
        ``[len(envs), ...]``; stored as one encoded stream per env and camera, encoded on the
        writer's side: see `Images` and `rollrec.engine.images`), extras ``[N, ...]``: tensors on the
        recording device, or numpy arrays (on a GPU recorder copied through pinned memory,
        ``non_blocking``: a host copy, no wait). The values are copied: later in-place changes
        to them do not reach the file. A call that does not match the first raises ValueError
        and records nothing. CUDA: the copies are queued on the recording device's current
        stream; the flush waits for that stream (see `rollrec.engine.flush`).
        """
        if self._closed:
            raise RuntimeError(self._failure or f"record() after close(): {self.path} is finished")
        given = dict(
            obs=obs, act=act, rew=rew, done=done, truncated=truncated, base_pos=base_pos, base_quat=base_quat,
            reward_terms=reward_terms, link_pos=link_pos, link_quat=link_quat, images=images, **extras,
        )
        first = self._schema is None
        if first:
            self._start(given)
        sources = self._schema.gather(given)
        if first:
            self._digest_start(sources)
        if self._vol is not None:
            self._record_volume(sources, given)
            return
        slot = self.steps % self._cap
        if slot % self._seg == 0:
            self._acquire(slot // self._seg)
        for spec, dst, src in zip(self._schema.fields, self._ring.slots[slot], sources):
            if spec.kind == "copy":
                dst.copy_(src if src.dim() == dst.dim() else src.reshape(dst.shape))
            elif spec.kind == "cat":
                torch.cat([s.reshape(self.num_envs, -1) for s in src], dim=-1, out=dst)
            else:
                torch.stack(src, dim=-1, out=dst)
        self.steps += 1
        if (slot + 1) % self._seg == 0 or time.monotonic() >= self._flush_deadline:
            self._flush(self.steps)

    def _record_volume(self, sources: list[Any], given: dict[str, Any]) -> None:
        """`record` with volume options: kept row ``t // every``, its slot acquired at its first step,
        flushed once its last step is recorded (see `rollrec.engine.volume_record`)."""
        t, k = self.steps, self._every
        row, sub = divmod(t, k)
        slot = row % self._cap
        if sub == 0 and slot % self._seg == 0:
            self._acquire(slot // self._seg)
        self._vol.step(t, slot, sources, given)
        self.steps += 1
        if sub == k - 1 and (slot + 1) % self._seg == 0:
            self._flush(row + 1)
        elif time.monotonic() >= self._flush_deadline:
            self._flush(self.steps // k)

    def _acquire(self, segment: int) -> None:
        try:
            self._pipeline.acquire(segment)
        except RuntimeError as exc:  # the writer failed (a Ctrl-C while waiting leaves the recorder usable)
            self._fail(exc)

    def _flush(self, upto: int) -> None:
        """Hand the rows recorded since the last flush up to row ``upto`` to the writer, a segment at a time
        (they span two segments only when a flush was interrupted, e.g. by Ctrl-C while it waited)."""
        while upto > self._flushed:
            start = self._flushed % self._cap
            rows = min(upto - self._flushed, self._seg - start % self._seg)
            try:
                self._pipeline.flush(start // self._seg, rows, start % self._seg)
            except RuntimeError as exc:
                self._fail(exc)
            self._flushed += rows
        self._flush_deadline = time.monotonic() + self._interval
        if self._start_digest is not None and self._start_digest.ready():  # in the sidecar from now on
            self._note_start()

    def _digest_start(self, sources: list[Any]) -> None:
        """Digest every env's first obs on the device (``meta["start_state"]``: what `rollrec compare`
        pairs runs by); queued work only, no wait. A failure costs the digest, never the recording."""
        for spec, src in zip(self._schema.fields, sources):
            if spec.name == "obs":
                try:
                    self._start_digest = StartDigest(src if spec.kind == "cat" else [src])
                except (ValueError, RuntimeError, TypeError) as exc:
                    warnings.warn(f"rollrec: no start_state digest for {self.path} ({exc})", stacklevel=3)

    def _note_start(self) -> None:
        digest, self._start_digest = self._start_digest, None
        self._set_meta(start_state=digest.entry())

    def flush(self) -> None:
        """Hand every step recorded so far to the writer now, instead of at the end of the segment
        or the flush interval (it commits them a moment later; this does not wait for the disk):
        e.g. before a loop pauses, so a live replay shows its last step."""
        if self._closed or self._schema is None:
            return
        self._flush(self.steps // self._every)

    def record_frame(self, frame: Any) -> None:
        """Add the env's render of the step just recorded to the video beside the rollout.

        ``frame``: one image ``[H, W, C]`` or a batch ``[N, H, W, C]`` (numpy or torch, uint8 or
        float in [0, 1]); a batch keeps ``video_envs``. Frames are copied and encoded on a
        background thread into ``<path stem>.mp4`` (or go to ``Video(sink=...)``); ``meta["video"]``
        lists the file, its envs and the rollout step of every frame. With ``every=k`` only the
        frames of kept steps are kept.
        """
        if self.steps == 0:
            raise RuntimeError("record_frame() before the first record(): a frame belongs to a recorded step")
        if self._video is None:
            fps = self.video_fps or max(1.0, round(1.0 / self.dt, 3))
            self._video = self._video_sink(self.video_path, fps, self.video_envs)
            self._video_fps = fps
            if self._dropped is not None:
                self._dropped.video = self._video
        row, sub = divmod(self.steps - 1, self._every)
        if sub == 0:  # with every=k, frames of the steps not kept are not kept either
            self._video.submit(row, frame)

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

    # ---- the first step fixes the layout ------------------------------------------------------
    def _start(self, given: dict[str, Any]) -> None:
        """Fix the device, the fields, the ring and the file from the first step, then start writing."""
        obs = given.get("obs")
        if self.device is None:
            first = next(iter(obs.values())) if isinstance(obs, Mapping) and obs else obs
            self.device = first.device if isinstance(first, torch.Tensor) else torch.device("cpu")
        self.device = resolve_device(self.device)  # "cuda" -> "cuda:<current device>", as its tensors say
        detail = len(self._plan.envs) if self._plan is not None and self._plan.envs is not None else None
        schema = Schema(self.num_envs, self.device, given, detail_envs=detail)
        link_count = self._check_links(schema)
        transforms = self._host_transforms(schema)
        make = plain_setup if self._plan is None else partial(volume_setup, self._plan)
        setup = make(schema, device=self.device, segment_steps=self.segment_steps, max_segment_bytes=self.max_segment_bytes,
                     max_steps=self.max_steps, ring_segments=self.ring_segments, images=self.images_options)
        self._kept = setup.kept
        self._images = setup.images
        self._seg, self._cap = setup.segment, setup.segment * self.ring_segments
        self._check_obs_layout(schema)
        self.meta = self._file_meta(schema, setup)
        model_arrays, model_meta = self._bind_model(link_count)
        self._schema = schema
        try:
            self._stream = self._partial.begin(
                setup.members, info=self._recovery_info(), overwrite=self.overwrite, durable=self.durable,
                variable=setup.variable, direct=self.direct_io, open_ended=self.max_steps is None,
            )
        except BaseException:
            self._schema = None
            raise
        self._partial.keep_model(model_arrays, model_meta)  # beside the partial file, for `rollrec recover`
        self._start_pipeline(schema, setup, transforms)
        if self._serve is not None and (self._shard is None or self._shard.rank == 0):
            self.server = LiveServer(self._shard.directory if self._shard is not None else self.path, self._serve)

    def _check_links(self, schema: Schema) -> int | None:
        """The link count of ``link_pos`` (None without it), with ``link_names`` to match."""
        link_count = next((s.row_shape[0] for s in schema.fields if s.name == "link_pos"), None)
        if link_count is not None and self.link_names is None:
            self.link_names = [f"link_{i}" for i in range(link_count)]
        if self.link_names is not None and link_count is not None and len(self.link_names) != link_count:
            raise ValueError(f"link_names has {len(self.link_names)} names but link_pos has {link_count} links")
        return link_count

    def _host_transforms(self, schema: Schema) -> dict[str, Any]:
        """What the writer does to a field's rows on the host before they reach the file."""
        transforms = {}
        for s in schema.fields:
            if s.name == "rew_terms" and s.ring_dtype != torch.float32 and self._plan is None:
                transforms["rew_terms"] = lambda a: a.astype(np.float32)  # volume control casts on the device
            if self.quat_order == "xyzw" and s.name in ("base_quat", "link_quat"):
                transforms[s.name] = lambda a: a[..., [3, 0, 1, 2]]
        return transforms

    def _check_obs_layout(self, schema: Schema) -> None:
        if "obs_layout" in self.extra_meta:  # a flat obs the caller describes; a dict obs is described by rollrec
            if schema.obs_layout:
                raise ValueError("meta['obs_layout']: obs is a dict, so rollrec writes its layout; do not pass one")
            obs_dim = next(s.row_shape[0] for s in schema.fields if s.name == "obs")
            check_obs_layout(self.extra_meta["obs_layout"], obs_dim, "meta")

    def _file_meta(self, schema: Schema, setup: Setup) -> dict[str, Any]:
        meta = make_meta(
            num_steps=0, num_envs=self.num_envs, dt=self.dt * self._every, env_name=self.env_name, version=setup.version,
            extras=[e for e in schema.extras if e in self._kept],
            **({"obs_layout": schema.obs_layout} if schema.obs_layout and "obs" in self._kept else {}),
        )
        meta.update(setup.meta)
        meta.update(self.extra_meta)
        return meta

    def _bind_model(self, link_count: int | None) -> tuple[dict[str, np.ndarray] | None, dict[str, Any] | None]:
        """The model's members and meta entries, bound and checked before anything is written
        (``(None, None)`` without a model)."""
        if self.model is None:
            return None, None
        stored_links = self.link_names if link_count is not None and "link_pos" in self._kept else None
        model_arrays, model_meta = model_members(self.model, stored_links)
        self.model = self.model.bind(stored_links or [])
        self.meta.update(model_meta)
        return model_arrays, model_meta

    def _start_pipeline(self, schema: Schema, setup: Setup, transforms: dict[str, Any]) -> None:
        encoders = setup.images.encoders if setup.images is not None else {}
        if setup.rings is not None:
            self._vol = setup.rings
            self._gather = setup.rings.gatherer(schema, transforms, encoders)
        try:
            self._pipeline = FlushPipeline(
                setup.ring, setup.segment, self._stream, constants=setup.constants, transforms=transforms,
                staging_buffers=self.staging_buffers, gather=self._gather, device=self.device, encoders=encoders,
            )
        except BaseException:
            self._partial.release()
            raise
        self._dropped = _Resources(self._pipeline, self._partial, str(self.path))
        self._finalizer = weakref.finalize(self, _on_drop, weakref.ref(self), self._dropped)
        self._ring = setup.ring
        self._ring_bytes = setup.ring.nbytes if self._vol is None else self._vol.nbytes
        self._flush_deadline = time.monotonic() + self._interval

    def _recovery_info(self) -> dict[str, Any]:
        """What `rollrec.recover` needs besides the rows, kept in the sidecar."""
        return PartialRecording.recovery_info(
            self.meta, self._term_names, self.link_names if "link_pos" in self._kept else None, self.compress,
        )

    @property
    def _term_names(self) -> list[str]:
        """The names of the reward terms kept in the file (none when ``fields=`` leaves them out)."""
        return self._schema.reward_term_names if "rew_terms" in self._kept else []

    # ---- info ---------------------------------------------------------------------------------
    @property
    def segment_length(self) -> int:
        """Steps per flushed segment (known after the first `record`)."""
        return self._seg

    @property
    def ring_bytes(self) -> int:
        """Bytes of the ring buffers (0 before the first `record`; they are freed by `close`)."""
        return self._ring_bytes

    @property
    def staging_bytes(self) -> int:
        """Pinned host bytes the CUDA staging buffers hold now: ``staging_buffers`` allocations of a
        segment's rows each, rounded up to pages (0 on CPU, before the first `record` and after `close`)."""
        return self._pipeline.pinned_bytes if self._pipeline is not None else 0

    def update_meta(self, **entries: Any) -> None:
        """Add entries to ``meta`` (written when the file is finished), checked and converted as
        the ``meta`` argument is: a bad entry raises ValueError here. Safe while recording: the
        writer thread only ever reads a JSON snapshot taken here (recovery sees the entries from
        the writer's next commit), never ``meta`` itself."""
        if self._closed:
            raise RuntimeError(f"update_meta() after close(): {self.path} is finished")
        entries = user_meta(entries)
        self.extra_meta = {**self.extra_meta, **entries}
        if self._schema is not None:
            self._set_meta(**entries)

    def _set_meta(self, **entries: Any) -> None:
        """Replace ``meta`` by a copy holding ``entries`` and hand the writer a snapshot of it."""
        self.meta = {**self.meta, **entries}
        if self._stream is not None:
            self._partial.describe(self._recovery_info())

    # ---- finishing ----------------------------------------------------------------------------
    def close(self) -> Path:
        """Flush what is left, finish the file and return its path. Idempotent.

        Sharded (torch.distributed): a collective; returns the rollout directory once every rank
        has closed and rank 0 has written the manifest (see `rollrec.engine.shards`).

        If finishing fails, the writer thread, the file descriptor and the ring are released
        all the same, and the error says whether `rollrec recover` can keep the committed steps.
        """
        if self._closed:
            if self._result is None:
                raise RuntimeError(self._failure or f"{self.path}: closing failed earlier")
            return self._result
        self._closed = True
        if self._finalizer is not None:
            self._finalizer.detach()  # closed by its owner: nothing left for a finaliser
        if self._shard is not None:
            self._result = self._shard.close(self._finish_file)
        else:
            self._result = self._finish_file()
        return self._result

    def _finish_file(self) -> Path:
        if self._schema is None:
            self._failure = f"{self.path}: nothing was recorded (record() was never called); no file was written"
            raise ValueError(self._failure)
        try:
            rows = self._flush_last_rows()
            link_names = self.link_names if "link_pos" in self._schema.args and "link_pos" in self._kept else None
            small = static_members(self.meta, self._term_names, link_names, self.model)
            self._result = self._partial.finish(small, rows, self.compress)
            return self._result
        except Exception as exc:
            self._release()
            self._failure = self._partial.failure_message(exc)
            raise RuntimeError(self._failure) from exc
        except BaseException as exc:  # Ctrl-C while finishing: the partial files stay for `rollrec recover`
            self._release()
            self._failure = self._partial.failure_message(exc)
            raise
        finally:
            self._release()

    def _flush_last_rows(self) -> int:
        """Hand the last rows (and the video's steps) to the writer and wait for it; the rows."""
        rows = -(-self.steps // self._every)  # a last row of fewer than `every` steps is kept too
        if self._vol is not None:
            self._vol.end(self.steps, (rows - 1) % self._cap)
        self._flush(rows)
        if self._start_digest is not None:
            self._note_start()
        self._close_video()
        self._set_meta(num_steps=rows, **({"recorded_steps": self.steps} if self.meta["format_version"] > 1 else {}))
        self._pipeline.close()
        if self._gather is not None:  # the writer thread has ended: the episodes still running
            for name, part in self._gather.finish(self.steps).items():
                self._stream.append(name, part)
        return rows

    def _fail(self, exc: BaseException) -> None:
        """The writer failed while recording: release everything, then raise what to do about it."""
        self._closed = True
        if self._finalizer is not None:
            self._finalizer.detach()
        self._release()
        self._failure = self._partial.failure_message(exc)
        raise RuntimeError(self._failure) from exc

    def _release(self) -> None:
        """End the writer thread, close the file, drop the ring and the staging buffers."""
        if self._pipeline is not None:
            with contextlib.suppress(RuntimeError):  # a writer failure is being reported already
                self._pipeline.close()
        if self._images is not None:  # the writer thread has ended: nothing encodes any more
            self._images.close()
        self._partial.release()
        if self._video is not None and self._result is None:
            self._video.abort()
        self._ring = None
        self._vol = None  # the window ring and the episode buffers go with the ring
        if self._gather is not None and self._result is None:
            self._gather = None

    def __enter__(self) -> Recorder:
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


class _Resources:
    """What a recorder dropped without `Recorder.close` still holds (the finaliser releases it);
    never a reference to the recorder itself."""

    def __init__(self, pipeline: FlushPipeline, partial: PartialRecording, path: str):
        self.pipeline = pipeline
        self.partial = partial
        self.path = path
        self.video: FrameSink | None = None

    def release(self) -> None:
        """End the writer threads (committing what they were handed), close the file, give up the
        lease, then say what is left for ``rollrec recover``."""
        with contextlib.suppress(Exception):
            self.pipeline.close()
        with contextlib.suppress(Exception):
            self.partial.release()
        if self.video is not None:
            with contextlib.suppress(Exception):
                self.video.abort()
        rows = self.partial.committed_rows
        kept = (f"its {rows} committed steps are kept in {os.path.basename(self.partial.data_path)}: run "
                f"`rollrec recover {self.path}`" if os.path.exists(self.partial.sidecar_path) else "no partial file is left")
        warnings.warn(f"rollrec: the Recorder of {self.path} was dropped without close(): released its threads and "
                      f"files; {kept}", RuntimeWarning, stacklevel=2)


def _on_drop(recorder_ref: weakref.ref, resources: _Resources) -> None:
    """`weakref.finalize` callback: the recorder was garbage collected (``recorder_ref()`` is None),
    or the interpreter is exiting with it still open."""
    recorder = recorder_ref()
    if recorder is not None and not recorder._closed and recorder._shard is None:
        try:  # interpreter exit: finish the file as close() would
            path = recorder.close()
            print(f"rollrec: {path}: the Recorder was never closed; finished it at exit ({recorder.steps} steps)",
                  file=sys.stderr, flush=True)
        except BaseException as exc:  # noqa: BLE001 - at exit: say it, never raise
            print(f"rollrec: {recorder.path}: the Recorder was never closed, and finishing it at exit failed: {exc}",
                  file=sys.stderr, flush=True)
        return
    if threading.current_thread().name.startswith("rollrec-"):  # collected on one of its own threads: never join it
        threading.Thread(target=resources.release, name="release-dropped-recorder").start()
    else:
        resources.release()


__all__ = ["Recorder"]

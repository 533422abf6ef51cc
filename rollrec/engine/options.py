"""`Recorder`'s options, grouped by what they control, so its constructor reads in one screen.

============  ===================================================================================
`Volume`      what is kept: some envs in detail, one step in k, dtypes, fields, captured episodes
`Ring`        device memory: the ring of segments steps are recorded into, the staging buffers
`Storage`     how the file is written: compression, overwriting, syncs, direct I/O, flush interval
`Video`       the frames of `Recorder.record_frame`: envs, frame rate, where they go
`Images`      the camera images of `Recorder.record(images=...)`: lossy or lossless, encoder settings
`Sharding`    a recording across ``torch.distributed`` ranks
============  ===================================================================================

Each group is a frozen dataclass whose fields have the defaults the keyword arguments always
had, and every field can still be passed to `Recorder` (and `RolloutRecorder`) by its own name:
``Recorder(path, n, every=4)`` is ``Recorder(path, n, volume=Volume(every=4))``; a name given
beside its group sets that field of it (an option set to two different values is an error). `Video`'s fields
keep their names with a ``video_`` prefix there (``video_envs=``, ``video_fps=``), `Images`' with an
``image_`` prefix (``image_quality=``). Values are
checked where they are used, with the messages the keyword arguments always gave.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rollrec.engine.frames import FrameSinkFactory


@dataclass(frozen=True)
class Volume:
    """What a recording keeps (`rollrec.engine.volume`). Any option here writes format v2 unless
    the file still satisfies v1 (see `rollrec.format`).

    Args:
        envs: envs that keep every field (a list or range of env ids, or a bool mask of N); the
            file's other fields (``all_env_fields``) are kept for every env. Heavy members are
            then ``[T, len(envs), ...]`` and ``meta["env_ids"]`` lists their envs.
        all_env_fields: the fields every env keeps with ``envs`` or ``capture`` (default ``rew``,
            ``done``, ``truncated``, ``rew_terms``, ``base_pos``, ``base_quat``; ``()``: none,
            the episode index still lists every env's episodes).
        every: keep the first of every k steps (``meta["dt"]`` is then ``k * dt``); ``rew`` and
            ``rew_terms`` of a kept row are summed over its k steps and ``done``/``truncated``
            OR-ed, and the episode index gives every episode's exact steps and return.
        dtypes: the stored dtype of some fields, e.g. ``{"obs": torch.float16}`` (cast on the
            device; floats stay floats for rewards and poses; ``done``/``truncated`` stay bool).
        fields: keep only these fields (``rew``, ``done``, ``truncated``, ``base_pos`` and
            ``base_quat`` are always kept).
        capture: which ended episodes keep every field: ``"terminated"`` (ended by termination,
            not by a time limit), a number (episodes whose return is below it), or a callable
            ``fn(ends: EpisodeEnds) -> [N] bool`` run on the device at every step.
        window: with ``capture``: the last ``window`` kept steps of each captured episode keep
            every field, stored one episode after another (``[R, ...]``) with an index.

    All of it is selected on the device inside `Recorder.record`, without a sync; what is not
    kept never reaches the host.
    """

    envs: Sequence[int] | range | Any | None = None
    all_env_fields: Sequence[str] | None = None
    every: int = 1
    dtypes: Mapping[str, Any] | None = None
    fields: Sequence[str] | None = None
    capture: Any = None
    window: int | None = None


@dataclass(frozen=True)
class Ring:
    """Device memory: bounded by ``ring_segments x segment_steps`` steps, plus on CUDA
    ``staging_buffers`` pinned host segments, whatever the rollout length.

    Args:
        segment_steps: steps per segment; a full segment is flushed to disk asynchronously.
        max_segment_bytes: if set, segments are shortened so one holds at most this many bytes.
        ring_segments: segments in the ring (recording continues into one while another flushes).
        staging_buffers: pinned host segments for device-to-host copies (CUDA only; one registered
            allocation each, reported by `Recorder.staging_bytes`).
    """

    segment_steps: int = 256
    # Four segments of at most 32 MiB (issue 25; was two of 64 MiB, the same memory): the writer may
    # fall three segments behind (a commit's sync, a slow moment of the disk) before record() waits.
    max_segment_bytes: int | None = 32 << 20
    ring_segments: int = 4
    staging_buffers: int = 2


@dataclass(frozen=True)
class Storage:
    """How the file is written (`rollrec.io.partial` for the files beside it while it is).

    Args:
        compress: deflate the file when closing (a second pass; the file is then read whole).
        overwrite: discard the partial files of an interrupted recording of the path that was
            never recovered (without it, finding them is an error naming `rollrec recover`).
            An existing finished file at the path is always replaced. A recording another
            process is making now is never discarded (`rollrec.io.partial.RecordingBusyError`).
        durable: sync the rows to disk before the sidecar names them and the file before it is
            renamed, so that a power loss cannot leave wrong data (a kill never can). False skips
            the syncs: faster when the rollout fits in the page cache, and after a power loss
            `rollrec recover` refuses rows that did not reach the disk.
        direct_io: None writes the rows around the page cache (``O_DIRECT``) where the file
            system allows it, else with buffered writes that keep dirty pages bounded; True
            requires direct I/O (OSError at the first `record` where refused); False never uses it.
        flush_interval_s: hand a partly filled segment to the writer when this many seconds
            have passed since the last flush, so a kill loses at most about this much recording
            (None: flush full segments only). Checked with the host clock: no device sync.
    """

    compress: bool = False
    overwrite: bool = False
    durable: bool = True
    direct_io: bool | None = None
    flush_interval_s: float | None = 1.0


@dataclass(frozen=True)
class Video:
    """The frames `Recorder.record_frame` is given.

    Args:
        envs: envs whose frames are kept when a frame is a batch of all N renders (tiled,
            labelled ``env k``); None keeps every frame of the batch. (``video_envs=``)
        fps: frame rate of the video (default ``1 / dt``). (``video_fps=``)
        sink: makes what the frames go to, ``sink(path, fps, envs) -> FrameSink``
            (`rollrec.engine.frames`); None: an mp4 encoded on a background thread
            (`rollrec.media.background.BackgroundVideoWriter`).
    """

    envs: Sequence[int] | None = None
    fps: float | None = None
    sink: FrameSinkFactory | None = None


@dataclass(frozen=True)
class Images:
    """How the camera images of `Recorder.record` (``images={"front": rgb, ...}``) are stored: one
    encoded stream per env and camera, encoded on the writer's side, never in `Recorder.record`
    (`rollrec.engine.images`; the format in `rollrec.format.images`).

    Args:
        quality: ``"lossy"`` (default): uint8 RGB cameras ``[N, H, W, 3]`` are H.264 (4:4:4, about
            30x smaller than raw at 38 dB PSNR on rendered frames); ``"lossless"``: they are stored
            exactly too. Depth, segmentation and any other image (other dtypes or channel counts)
            are always lossless. (``image_quality=``)
        crf: H.264's constant rate factor for lossy cameras, 0..51: lower keeps more (and
            stores more); default 16. (``image_crf=``)
        preset: x264's speed preset for lossy cameras (``"ultrafast"`` .. ``"veryslow"``; default
            ``"veryfast"``): slower presets store less at the same quality. (``image_preset=``)
        keyframe_interval: a frame that decodes alone at least every this many frames of a stream
            (reading any frame decodes at most this many). (``image_keyframe_interval=``)
        threads: encoder threads, each encoding whole streams (default: the CPU count, at most 8).
            (``image_threads=``)
    """

    quality: str = "lossy"
    crf: int = 16
    preset: str = "veryfast"
    keyframe_interval: int = 32
    threads: int | None = None


@dataclass(frozen=True)
class Sharding:
    """A recording across the ranks of ``torch.distributed`` (`rollrec.engine.shards`).

    Args:
        env_offset: the global id of this rank's first env (pass it on every rank or none;
            default: rank order). The ranks' env ranges must tile 0..N-1.
        distributed: None records a shard per rank when torch.distributed runs more than one
            rank; False writes a plain file whatever the process group (e.g. rank 0 alone).
        dist_timeout: seconds a rank waits for the others at construction and in `close`.
    """

    env_offset: int | None = None
    distributed: bool | None = None
    dist_timeout: float = 300.0


#: Each group's keyword argument of `Recorder`, its class, and the flat name of each field.
GROUPS: dict[str, tuple[type, dict[str, str]]] = {
    "volume": (Volume, {f.name: f.name for f in dataclasses.fields(Volume)}),
    "ring": (Ring, {f.name: f.name for f in dataclasses.fields(Ring)}),
    "storage": (Storage, {f.name: f.name for f in dataclasses.fields(Storage)}),
    "video": (Video, {"video_envs": "envs", "video_fps": "fps", "video_sink": "sink"}),
    "images": (Images, {f"image_{f.name}": f.name for f in dataclasses.fields(Images)}),
    "sharding": (Sharding, {f.name: f.name for f in dataclasses.fields(Sharding)}),
}


def gather(groups: Mapping[str, Any], flat: Mapping[str, Any]) -> dict[str, Any]:
    """Every group as an instance: the one given (``groups``: ``{"volume": Volume(...) | None}``)
    with the options given by their own names (``flat``: ``{"every": 4}``) set in it.

    Raises TypeError for a name no group has, or a group that is not an instance of its class,
    and ValueError for an option the group given sets to another value than its own name does.
    """
    owner = {flat_name: group for group, (_, names) in GROUPS.items() for flat_name in names}
    unknown = sorted(set(flat) - set(owner))
    if unknown:
        raise TypeError(f"Recorder() got an unexpected keyword argument {unknown[0]!r}")
    out = {}
    for group, (cls, names) in GROUPS.items():
        given = groups.get(group)
        if given is None:
            given = cls()
        elif not isinstance(given, cls):
            raise TypeError(f"{group} must be a rollrec.{cls.__name__}, got {type(given).__name__}")
        mine = {names[k]: (k, v) for k, v in flat.items() if owner[k] == group}
        default = cls()
        for field, (name, value) in mine.items():
            ours = getattr(given, field)
            if ours is not value and ours != getattr(default, field) and ours != value:
                raise ValueError(f"{name}={value!r} and {group}={cls.__name__}({field}={ours!r}) disagree: give it once")
        out[group] = dataclasses.replace(given, **{field: v for field, (_, v) in mine.items()})
    return out


__all__ = ["GROUPS", "Images", "Ring", "Sharding", "Storage", "Video", "Volume", "gather"]

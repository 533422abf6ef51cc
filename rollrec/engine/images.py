"""Camera images in a recording: what ``Recorder.record(images=...)`` keeps, encoded on the writer side.

Each camera is a ring field like any other (named ``images/<cam>``: `rollrec.format.images`), so
volume control applies to it unchanged: ``envs=`` keeps the detail envs' frames, ``every=k`` the
frame of each kept row's first step, ``capture=``/``window=`` the frames of each captured
episode's last W kept rows (gathered on the writer thread with the other window fields,
`rollrec.engine.gather`), ``fields=``/``all_env_fields=`` take the camera's name. Only the way
its rows reach the file differs::

    record()         ring slot <- frames [N or M, H, W, C]     (a device copy: nothing is encoded here)
    writer thread    job rows [n, M, H, W, C] on the host ─► CameraEncoder.encode_rows ─► packets + index
                     captured windows [R, H, W, C]         ─► CameraEncoder.encode_windows
    encoder threads  one task per stream (env, or window): H.264 or zstd (`rollrec.media.streams`)

The writer thread appends the packets and index rows with the job's other rows, and the commit
that follows names them together: every frame of a committed row is committed (encoders return a
packet per frame at once, so no frame waits inside an encoder). The writer waits for the
encoders, and the recording thread for the writer only when every ring segment is in use: when
encoding is slower than recording, `record` waits (backpressure), it never drops a frame.

Which codec (`stream_spec`): uint8 RGB ``[H, W, 3]`` is H.264 unless ``quality="lossless"``;
every other image (16-bit or float depth, segmentation, RGBA, gray) is always lossless (zstd).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from rollrec._npz.layout import MemberSpec
from rollrec.engine.options import Images
from rollrec.format.images import (
    IMAGE_PREFIX,
    INDEX_COLUMNS,
    StreamSpec,
    check_camera_name,
    h264_params,
    index_member,
    packets_member,
    zstd_params,
)

#: The `record` argument that holds the cameras.
IMAGE_ARG = "images"
QUALITIES = ("lossy", "lossless")
#: Bytes of packets reserved per raw byte of frames, when the rollout's length is known (the file
#: grows past it; unused space is given back when it is finished).
_RESERVE_LOSSY, _RESERVE_LOSSLESS = 1 / 8, 1 / 2


def camera_of(member: str) -> str:
    """``"images/front"`` -> ``"front"``."""
    return member[len(IMAGE_PREFIX):]


def expand_images(given: Mapping[str, Any]) -> Mapping[str, Any]:
    """``given`` with its ``images`` dict replaced by one entry per camera, ``images/<cam>``.

    ValueError for ``images`` that is not a dict of named cameras."""
    images = given.get(IMAGE_ARG)
    if images is None:
        return given
    if not isinstance(images, Mapping):
        raise ValueError(f"record(): images must be a dict of camera name -> [N, H, W(, C)] images, "
                         f"got {type(images).__name__}")
    out = {k: v for k, v in given.items() if k != IMAGE_ARG}
    for name, value in images.items():
        try:
            check_camera_name(name)
        except ValueError as exc:
            raise ValueError(f"record(): {exc}") from None
        out[IMAGE_PREFIX + name] = value
    return out


def check_options(options: Images) -> Images:
    """``options`` checked (ValueError naming the keyword argument)."""
    if options.quality not in QUALITIES:
        raise ValueError(f"image_quality must be 'lossy' or 'lossless', got {options.quality!r}")
    h264_params(options.crf, options.preset)
    k = options.keyframe_interval
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"image_keyframe_interval must be an integer >= 1, got {k!r}")
    t = options.threads
    if t is not None and (isinstance(t, bool) or not isinstance(t, (int, np.integer)) or t < 1):
        raise ValueError(f"image_threads must be an integer >= 1 or None, got {t!r}")
    return options


def stream_spec(row_shape: tuple[int, ...], dtype: np.dtype, options: Images) -> StreamSpec:
    """How a camera with frames ``row_shape`` of ``dtype`` is stored (see the module docstring)."""
    dtype = np.dtype(dtype)
    rgb = dtype == np.uint8 and len(row_shape) == 3 and row_shape[2] == 3
    if rgb and options.quality == "lossy":
        return StreamSpec("h264", tuple(row_shape), dtype.str, int(options.keyframe_interval),
                          h264_params(options.crf, options.preset))
    return StreamSpec("zstd", tuple(row_shape), dtype.str, int(options.keyframe_interval), zstd_params())


def check_image_shape(arg: str, shape: tuple[int, ...]) -> None:
    """ValueError unless ``shape`` (the env axis first) is ``[n, H, W]`` or ``[n, H, W, C]`` with C in 1..4."""
    if len(shape) not in (3, 4) or (len(shape) == 4 and not 1 <= shape[3] <= 4) or 0 in shape[1:]:
        raise ValueError(f"record(): image {camera_of(arg)!r}: expected [N, H, W] or [N, H, W, C] with C in 1..4, "
                         f"got shape {tuple(shape)}")


@dataclass
class Camera:
    """One kept camera: its ring field, stream spec, layout (``"all"``, ``"detail"``, ``"window"``)
    and column count (N, the detail envs, or 1 for windows)."""

    member: str
    spec: StreamSpec
    where: str
    columns: int

    @property
    def name(self) -> str:
        return camera_of(self.member)


class CameraEncoder:
    """The streams of one camera, for the writer thread: frames in, ``{member: rows}`` out."""

    def __init__(self, camera: Camera, pool: _Pool):
        from rollrec.media.streams import StreamSet

        self.camera = camera
        self._pool = pool
        self._streams = StreamSet(camera.spec, camera.columns)
        self._packets, self._index = packets_member(camera.name), index_member(camera.name)

    def encode_rows(self, rows: np.ndarray, first_row: int) -> dict[str, np.ndarray]:
        """A job's rows ``[n, columns, *frame]`` (kept rows ``first_row ..``) as the camera's members' rows."""
        self._streams.executor = self._pool.get()
        out = self._streams.encode_rows(rows, first_row)
        return {self._packets: out.packets, self._index: out.index}

    def encode_windows(self, rows: np.ndarray, lengths: Sequence[int], first_row: int) -> dict[str, np.ndarray]:
        """Captured windows ``[R, *frame]`` of ``lengths`` rows each, at window rows ``first_row ..``."""
        self._streams.executor = self._pool.get()
        out = self._streams.encode_windows(rows, lengths, first_row)
        return {self._packets: out.packets, self._index: out.index}

    def close(self) -> None:
        self._streams.close()


#: How much lower the encoder threads' scheduling priority is than the recording thread's (Linux ``nice``
#: of each thread): where cores are short, the recording thread runs first and encoding takes what is left.
ENCODER_NICENESS = 10


def _lower_priority() -> None:
    """Make the calling thread yield the CPU to the recording thread (Linux: a thread's own nice value)."""
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + ENCODER_NICENESS))
    except (AttributeError, OSError):  # not Linux (nice is per process there), or not allowed: run as is
        pass


class _Pool:
    """The encoder threads of a recording, started with the first batch and shut down by `close`.

    They run at a lower priority than the recording thread (`ENCODER_NICENESS`): encoding uses the
    cores `record` leaves idle; when it falls behind, `record` waits for a free segment (backpressure)
    rather than being slowed at every step."""

    def __init__(self, threads: int | None):
        self.threads = int(threads) if threads is not None else max(1, min(8, os.cpu_count() or 1))
        self._executor: ThreadPoolExecutor | None = None

    def get(self) -> ThreadPoolExecutor | None:
        if self.threads == 1:
            return None  # the writer thread encodes itself
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.threads, thread_name_prefix="rollrec-encode",
                                                initializer=_lower_priority)
        return self._executor

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None


class ImageStreams:
    """The cameras a recording keeps: their members, ``meta`` entries and encoders (one pool for all)."""

    def __init__(self, cameras: Sequence[Camera], options: Images):
        from rollrec.media.codecs.deps import require_av, require_zstd

        # Here, at the first record(), with the line that installs them; not on the writer thread.
        if any(c.spec.codec == "h264" for c in cameras):
            require_av()
        if any(c.spec.codec == "zstd" for c in cameras):
            require_zstd()
        self.cameras = {c.member: c for c in cameras}
        self._pool = _Pool(options.threads)
        self.encoders = {c.member: CameraEncoder(c, self._pool) for c in cameras}

    def members(self, rows: int | None, default_rows: int, window_rows: int) -> tuple[list[MemberSpec], list[str]]:
        """Each camera's packets and index members (all variable), reserving room for ``rows`` kept
        rows (``default_rows`` when the length is unknown) or ``window_rows`` window rows."""
        members, variable = [], []
        for c in self.cameras.values():
            frames = window_rows if c.where == "window" else (rows or default_rows) * c.columns
            share = _RESERVE_LOSSLESS if c.spec.lossless else _RESERVE_LOSSY
            members.append(MemberSpec(packets_member(c.name), "|u1", (), max(4096, int(frames * c.spec.frame_bytes * share))))
            members.append(MemberSpec(index_member(c.name), "<i8", (len(INDEX_COLUMNS),), max(16, frames)))
            variable += [members[-2].name, members[-1].name]
        return members, variable

    def meta(self) -> dict[str, Any]:
        """``{"images": {camera: spec}}`` (`rollrec.format.images`), or nothing without cameras."""
        if not self.cameras:
            return {}
        return {"images": {c.name: c.spec.to_meta() for c in self.cameras.values()}}

    def close(self) -> None:
        """End the encoder threads and release the encoders (once the writer thread has ended)."""
        self._pool.close()
        for enc in self.encoders.values():
            enc.close()


def image_streams(fields: Sequence[tuple[str, str, tuple[int, ...], np.dtype, int]], options: Images) -> ImageStreams | None:
    """The `ImageStreams` of the kept ring fields ``(member, where, row_shape, dtype, columns)``
    that are cameras, or None when none is."""
    cameras = [Camera(m, stream_spec(row, dtype, options), where, columns)
               for m, where, row, dtype, columns in fields if m.startswith(IMAGE_PREFIX)]
    return ImageStreams(cameras, options) if cameras else None


__all__ = [
    "IMAGE_ARG",
    "QUALITIES",
    "Camera",
    "CameraEncoder",
    "ImageStreams",
    "camera_of",
    "check_image_shape",
    "check_options",
    "expand_images",
    "image_streams",
    "stream_spec",
]

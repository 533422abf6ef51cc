"""Format version 3: camera images, stored per env and camera as encoded streams inside the ``.npz``.

A file recorded with ``Recorder.record(images={...})`` holds, for each camera ``<cam>`` (a Python
identifier), its frames as a *logical* per-step member named ``images/<cam>``: it has the layout
any per-step member has (`rollrec.format.v2`: every env ``[T, N, *frame]``, the detail envs
``[T, len(ids), *frame]`` with ``meta["env_ids"]["images/<cam>"]``, or captured episode windows
``[R, *frame]`` when ``"images/<cam>"`` is in ``meta["windows"]["members"]``), but it is not a
member of the zip. Its frames are stored encoded, in two members:

==========================  ============  =======  =================================================
member                      shape         dtype    meaning
==========================  ============  =======  =================================================
``images/<cam>/packets``    ``[B]``       uint8    the encoded frames, one packet each, back to back
``images/<cam>/index``      ``[F, 5]``    int64    one row per frame, columns `INDEX_COLUMNS`
==========================  ============  =======  =================================================

Index columns: ``row`` (the frame's row of the logical member: a kept step, or a window row),
``column`` (its column: the env for every-env cameras, the position in ``env_ids`` for detail
cameras, 0 for windows), ``offset`` and ``size`` (its packet: bytes ``offset .. offset + size`` of
``packets``), ``key`` (1 when decoding may start at this frame: it needs no earlier one).

Streams. The frames of one column (every-env and detail layouts), or of one captured episode
window, form one *stream*, in increasing row order; the index lists frames in the order they were
written (row by row, all columns of a row together; windows one after another). A frame whose
``key`` is 0 is decoded from the nearest earlier key frame of its stream on, frame by frame.
Key frames come at least every ``keyframe_interval`` frames of a stream, and a stream's first
frame is one, so reading any frame decodes at most that many packets.

``meta["images"]`` maps each camera to its stream's description (`StreamSpec`)::

    {"front": {"codec": "h264", "shape": [128, 128, 3], "dtype": "|u1", "keyframe_interval": 32,
               "params": {"crf": 16, "preset": "veryfast", "pix_fmt": "yuv444p", "color": "bt601-full"}},
     "depth": {"codec": "zstd", "shape": [128, 128], "dtype": "<u2", "keyframe_interval": 32,
               "params": {"level": 3}}}

Codecs (`CODECS`):

- ``"h264"`` (lossy, uint8 RGB ``[H, W, 3]``): each packet is one H.264 access unit in Annex B
  byte-stream form (start codes, SPS/PPS before every key frame), encoded by libx264 without
  B-frames or look-ahead, so a frame's packet exists as soon as the frame does. Pixels are
  YCbCr 4:4:4 (``pix_fmt``), BT.601 with full range (``color``: ``Y = 0.299 R + 0.587 G + 0.114
  B``, ``Cb = 128 + 0.564 (B - Y)``, ``Cr = 128 + 0.713 (R - Y)``, JPEG's). The packets of one
  stream from a key frame on, concatenated, are a raw ``.h264`` file ffmpeg plays.
- ``"zstd"`` (lossless, any dtype and shape: RGB, 16-bit depth, float depth, segmentation): a
  key packet is a Zstandard frame of the frame's bytes; another packet is one of the difference
  from the stream's previous frame, element by element, as unsigned integers of the same size
  (``uint8`` for ``|u1``, ``uint32`` for ``<f4``: float bits), modulo 2^bits. Elements of more
  than one byte are stored byte-planar (every element's byte 0, then every byte 1, ...), which
  Zstandard compresses better. Exact for every dtype.

Frames whose row a kill left uncommitted are not in the index; every frame the index names is
in ``packets``, and every committed row of the logical member has its frame (see `rollrec.io.recovery`).
``np.load`` reads both members as plain arrays; `rollrec.io` decodes them (``Rollout.images``).

Versions. A file with cameras is format version 3; everything of versions 1 and 2 holds
otherwise (a v3 file without volume options keeps every other member ``[T, N, ...]``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rollrec.format.errors import RolloutFormatError

#: The prefix of every image member, and of each camera's logical member name.
IMAGE_PREFIX = "images/"
INDEX_COLUMNS = ("row", "column", "offset", "size", "key")
ROW, COLUMN, OFFSET, SIZE, KEY = range(len(INDEX_COLUMNS))
#: The codecs a stream may use, and whether each is exact.
CODECS = {"h264": "lossy", "zstd": "lossless"}
#: The format version of a file with cameras.
IMAGES_VERSION = 3
#: x264's speed presets, fastest first, and the writers' defaults of each codec's params.
H264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")
DEFAULT_CRF, DEFAULT_PRESET, DEFAULT_ZSTD_LEVEL = 16, "veryfast", 3


def h264_params(crf: int = DEFAULT_CRF, preset: str = DEFAULT_PRESET) -> dict[str, Any]:
    """An ``"h264"`` stream's ``params``; ValueError for a CRF outside 0..51 or an unknown preset."""
    if isinstance(crf, bool) or not isinstance(crf, (int, np.integer)) or not 0 <= crf <= 51:
        raise ValueError(f"image_crf must be an integer in 0..51 (lower keeps more; default {DEFAULT_CRF}), got {crf!r}")
    if preset not in H264_PRESETS:
        raise ValueError(f"image_preset must be one of {', '.join(H264_PRESETS)}, got {preset!r}")
    return {"crf": int(crf), "preset": str(preset), "pix_fmt": "yuv444p", "color": "bt601-full"}


def zstd_params(level: int = DEFAULT_ZSTD_LEVEL) -> dict[str, Any]:
    """A ``"zstd"`` stream's ``params``."""
    return {"level": int(level)}


def camera_member(camera: str) -> str:
    """The logical member of ``camera``'s frames (named in ``meta["env_ids"]`` and ``meta["windows"]``)."""
    return IMAGE_PREFIX + camera


def packets_member(camera: str) -> str:
    return f"{IMAGE_PREFIX}{camera}/packets"


def index_member(camera: str) -> str:
    return f"{IMAGE_PREFIX}{camera}/index"


def is_image_member(name: str) -> bool:
    """Whether ``name`` is an image stream's member (or a camera's logical member)."""
    return name.startswith(IMAGE_PREFIX)


def check_camera_name(name: Any) -> str:
    """``name`` if it may name a camera (a Python identifier), else ValueError."""
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"camera names must be Python identifiers (they name file members), got {name!r}")
    return name


@dataclass(frozen=True)
class StreamSpec:
    """How one camera's frames are stored: ``codec`` (`CODECS`), the frame's ``shape`` and ``dtype``
    (numpy's ``str``, e.g. ``"|u1"``), ``keyframe_interval``, and the codec's ``params``."""

    codec: str
    shape: tuple[int, ...]
    dtype: str
    keyframe_interval: int
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def lossless(self) -> bool:
        return CODECS[self.codec] == "lossless"

    @property
    def frame_bytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize

    def to_meta(self) -> dict[str, Any]:
        return {"codec": self.codec, "shape": list(self.shape), "dtype": self.dtype,
                "keyframe_interval": self.keyframe_interval, "params": dict(self.params)}

    @classmethod
    def from_meta(cls, value: Any, camera: str, where: str) -> StreamSpec:
        """The spec of ``meta["images"][camera]``; `RolloutFormatError` unless it follows the format."""
        what = f"{where}: meta 'images'[{camera!r}]"
        if not isinstance(value, dict):
            raise RolloutFormatError(f"{what} must be an object")
        codec, shape, dtype = value.get("codec"), value.get("shape"), value.get("dtype")
        interval, params = value.get("keyframe_interval"), value.get("params", {})
        if codec not in CODECS:
            raise RolloutFormatError(f"{what}: unknown codec {codec!r:.40}; this rollrec reads {', '.join(CODECS)}")
        if not isinstance(shape, list) or not 1 <= len(shape) <= 4 or not all(type(s) is int and 0 < s <= 1 << 16 for s in shape):
            raise RolloutFormatError(f"{what}: 'shape' must be a list of 1 to 4 sizes in 1..65536, got {shape!r:.60}")
        try:
            np_dtype = np.dtype(dtype) if isinstance(dtype, str) else None
        except TypeError:
            np_dtype = None
        if np_dtype is None or np_dtype.kind not in "biuf" or np_dtype.str != dtype:
            raise RolloutFormatError(f"{what}: 'dtype' must be a numeric numpy dtype string, got {dtype!r:.40}")
        if type(interval) is not int or interval < 1:
            raise RolloutFormatError(f"{what}: 'keyframe_interval' must be an integer >= 1, got {interval!r:.40}")
        if not isinstance(params, dict):
            raise RolloutFormatError(f"{what}: 'params' must be an object")
        if codec == "h264" and (np_dtype != np.uint8 or len(shape) != 3 or shape[2] != 3):
            raise RolloutFormatError(f"{what}: codec 'h264' stores uint8 RGB frames [H, W, 3], got {dtype} {shape}")
        return cls(codec, tuple(shape), dtype, interval, dict(params))


def cameras(meta: Mapping[str, Any], where: str) -> dict[str, StreamSpec]:
    """``{camera: StreamSpec}`` of ``meta["images"]`` (empty without cameras); `RolloutFormatError`
    for a description that breaks the format or a camera in a file of version below 3."""
    value = meta.get("images")
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RolloutFormatError(f"{where}: meta 'images' must be an object")
    if meta.get("format_version", 1) < IMAGES_VERSION:
        raise RolloutFormatError(f"{where}: meta 'images' needs format version {IMAGES_VERSION}")
    out = {}
    for camera, spec in value.items():
        if not camera.isidentifier():
            raise RolloutFormatError(f"{where}: meta 'images' names a camera {camera!r:.40}, not an identifier")
        out[camera] = StreamSpec.from_meta(spec, camera, where)
    return out


def check_stream_members(specs: Mapping[str, StreamSpec], shapes: Mapping[str, tuple[int, ...]],
                         dtypes: Mapping[str, np.dtype], where: str) -> None:
    """`RolloutFormatError` unless each camera has its two members, of the right dtypes and ranks,
    and no other member is named like an image member."""
    expected = {}
    for camera in specs:
        expected[packets_member(camera)] = (np.dtype(np.uint8), 1)
        expected[index_member(camera)] = (np.dtype(np.int64), 2)
    for name, (dtype, rank) in expected.items():
        if name not in shapes:
            raise RolloutFormatError(f"{where}: meta 'images' names a camera whose member {name!r} the file does not hold")
        if dtypes[name] != dtype or len(shapes[name]) != rank or (rank == 2 and shapes[name][1] != len(INDEX_COLUMNS)):
            want = f"{dtype} [B]" if rank == 1 else f"{dtype} [F, {len(INDEX_COLUMNS)}]"
            raise RolloutFormatError(f"{where}: {name!r} must be {want}, got {dtypes[name]} {shapes[name]}")
    stray = [name for name in shapes if is_image_member(name) and name not in expected]
    if stray:
        raise RolloutFormatError(f"{where}: member {stray[0]!r} is named like an image stream that meta 'images' does not describe")


def check_index(index: np.ndarray, packets_bytes: int, rows: int, columns: int, where: str) -> None:
    """`RolloutFormatError` unless every index row names a packet inside ``packets`` (``packets_bytes``
    long), a row below ``rows`` and a column below ``columns``, with ``key`` 0 or 1, and each
    stream's first frame a key frame (checked when a camera is first read, not when opening)."""
    if index.size == 0:
        return
    row, column, offset, size, key = (index[:, i] for i in range(len(INDEX_COLUMNS)))
    if (row < 0).any() or (row >= rows).any():
        raise RolloutFormatError(f"{where}: a frame's row is outside 0..{rows - 1}")
    if (column < 0).any() or (column >= columns).any():
        raise RolloutFormatError(f"{where}: a frame's column is outside 0..{columns - 1}")
    if (offset < 0).any() or (size < 0).any() or (offset > packets_bytes - size).any():
        raise RolloutFormatError(f"{where}: a frame's packet lies outside the packets member ({packets_bytes} bytes)")
    if ((key != 0) & (key != 1)).any():
        raise RolloutFormatError(f"{where}: the index's 'key' column holds values other than 0 and 1")


__all__ = [
    "CODECS",
    "DEFAULT_CRF",
    "DEFAULT_PRESET",
    "DEFAULT_ZSTD_LEVEL",
    "H264_PRESETS",
    "IMAGES_VERSION",
    "IMAGE_PREFIX",
    "INDEX_COLUMNS",
    "StreamSpec",
    "camera_member",
    "cameras",
    "check_camera_name",
    "check_index",
    "check_stream_members",
    "h264_params",
    "index_member",
    "is_image_member",
    "packets_member",
    "zstd_params",
]

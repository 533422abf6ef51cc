"""The fields of a recording, fixed by the first `record()` call, and the per-step checks.

Each ring field is filled one of three ways, chosen at the first call:

- ``copy``: one tensor ``[N, *row]`` copied as is (obs, act, rew, done, poses, extras);
- ``cat``: a dict of tensors flattened to ``[N, -1]`` and concatenated (dict obs);
- ``stack``: a dict of ``[N]`` tensors stacked along the last axis (reward terms).

Cameras (``images={"front": [N, H, W, 3], ...}``) are ``copy`` fields named ``images/<cam>``
(`rollrec.engine.images`); with ``envs=`` a camera may give the detail envs' images only,
``[len(envs), H, W, ...]`` in the order of ``envs`` (render only what is kept).

Fields the format requires but the caller never gives (``truncated``, base pose) are constant:
they live outside the ring and the writer thread fills them. The checks below read only tensor
metadata (shape, dtype, device): they never synchronise with the device.

Everything a file could not hold is refused at the first call, never at close: dtypes numpy
lacks (float8, complex32, ...; ``bfloat16`` is the exception: it is recorded as ``float32``,
which holds every bfloat16 value exactly, so the ring keeps float32 for it), extras named like
a member the format defines, non-string keys of ``obs``/``reward_terms`` dicts, link poses that
disagree on the link count. Tensors that require grad are recorded by value (detached).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from rollrec.engine.cuda_host import host_to_device
from rollrec.engine.images import camera_of, check_image_shape, expand_images
from rollrec.format.images import IMAGE_PREFIX
from rollrec.format.v1 import RESERVED_NAMES

#: The named arguments of `Recorder.record`, in file order.
STEP_ARGS = ("obs", "act", "rew", "done", "truncated", "base_pos", "base_quat", "reward_terms", "link_pos", "link_quat")
REQUIRED_ARGS = ("obs", "act", "rew", "done")
#: Row shapes the format fixes for some fields (after the env axis); None: free.
_FIXED_ROWS: dict[str, tuple[int, ...]] = {
    "rew": (),
    "done": (),
    "truncated": (),
    "base_pos": (3,),
    "base_quat": (4,),
}
_CONSTANT_DEFAULTS: dict[str, tuple[np.dtype, tuple[int, ...], Any]] = {
    "truncated": (np.dtype(bool), (), False),
    "base_pos": (np.dtype(np.float32), (3,), 0.0),
    "base_quat": (np.dtype(np.float32), (4,), (1.0, 0.0, 0.0, 0.0)),
}
_FILE_NAMES = {"reward_terms": "rew_terms"}
#: Names an extra field may not take (members the format defines, or the file name of reward_terms).
RESERVED_EXTRAS = RESERVED_NAMES


def _numpy_dtypes() -> dict[torch.dtype, np.dtype]:
    out = {}
    for t in (torch.float16, torch.float32, torch.float64, torch.int8, torch.int16, torch.int32, torch.int64,
              torch.uint8, torch.bool, *(getattr(torch, n) for n in ("uint16", "uint32", "uint64") if hasattr(torch, n))):
        try:
            out[t] = torch.empty(0, dtype=t).numpy().dtype
        except (TypeError, RuntimeError):  # a torch without numpy support for it
            pass
    return out


#: torch dtypes a file stores as they are, and their numpy dtype.
NUMPY_DTYPES = _numpy_dtypes()


def ring_dtype_for(arg: str, dtype: torch.dtype) -> torch.dtype:
    """The dtype field ``arg`` keeps in the ring (and the file) when given ``dtype``; ValueError if
    numpy has no such dtype (the file must load with plain numpy). bfloat16 widens to float32."""
    if dtype == torch.bfloat16:
        return torch.float32
    if dtype.is_complex:
        raise ValueError(f"record(): field {arg!r}: complex dtype {dtype} is not supported")
    if dtype not in NUMPY_DTYPES:
        raise ValueError(
            f"record(): field {arg!r}: dtype {dtype} has no numpy equivalent, so a plain np.load could not "
            "read the file; convert it first (e.g. .float())"
        )
    return dtype


def resolve_device(device: torch.device | str) -> torch.device:
    """``device`` with its index: ``cuda`` is ``cuda:<current device>``, the device a tensor made
    on ``"cuda"`` reports (``torch.device("cuda") != torch.device("cuda:0")``)."""
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        return torch.device("cuda", torch.cuda.current_device())
    return device


def as_tensor(name: str, value: Any, device: torch.device) -> torch.Tensor:
    """``value`` as a tensor on ``device``; a numpy array (or list) is wrapped without a copy on CPU.

    On a GPU a host value is copied through pinned memory, ``non_blocking`` on the device's
    current stream (`rollrec.engine.cuda_host.host_to_device`): ``record()`` does not wait for
    the device, at the cost of one host copy. A tensor that requires grad is detached: its
    values are recorded, the graph is left alone.
    """
    if isinstance(value, torch.Tensor):
        return value.detach() if value.requires_grad else value
    if isinstance(value, np.ndarray):
        try:
            t = torch.from_numpy(value)
        except (TypeError, ValueError):  # negative strides or a dtype torch lacks
            try:
                t = torch.as_tensor(np.array(value))
            except (TypeError, ValueError, RuntimeError):
                raise ValueError(f"record(): field {name!r}: numpy dtype {value.dtype} is not supported") from None
        return host_to_device(t, device)
    try:
        t = torch.as_tensor(np.asarray(value))
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ValueError(f"record(): field {name!r}: expected a tensor or numpy array, got {type(value).__name__}") from exc
    return host_to_device(t, device)


@dataclass
class FieldSpec:
    """One ring field: its member name in the file, how it is filled and what each step must give."""

    name: str  # member name in the file
    kind: str  # "copy" | "cat" | "stack"
    row_shape: tuple[int, ...]  # per env, in the ring and the file
    ring_dtype: torch.dtype
    # What each step must give: for "copy" one (shape, dtype); for "cat"/"stack" one per key.
    expect: dict[str, tuple[tuple[int, ...], torch.dtype]] = field(default_factory=dict)
    env_rows: int | None = None  # a camera's env count as given: N, or the detail envs' count

    @property
    def is_camera(self) -> bool:
        return self.name.startswith(IMAGE_PREFIX)

    @property
    def keys(self) -> list[str]:
        return list(self.expect)

    @property
    def np_dtype(self) -> np.dtype:
        """The member's dtype in the file (reward terms are always float32)."""
        return np.dtype(np.float32) if self.name == "rew_terms" else NUMPY_DTYPES[self.ring_dtype]


class Schema:
    """Field specs fixed from the first call; `gather` checks a later call against them.

    ``detail_envs``: how many envs ``envs=`` keeps, when given (a camera may give only theirs).
    """

    def __init__(self, num_envs: int, device: torch.device, first: Mapping[str, Any], *, detail_envs: int | None = None):
        self.N = num_envs
        self.detail_envs = detail_envs
        self.device = resolve_device(device)
        self.fields: list[FieldSpec] = []
        self.obs_layout: list[dict[str, Any]] | None = None
        self.reward_term_names: list[str] = []
        self.extras: list[str] = []
        first = normalized(first)
        self.constants = {k: v for k, v in _CONSTANT_DEFAULTS.items() if first.get(k) is None}
        for arg in REQUIRED_ARGS:
            if first.get(arg) is None:
                raise ValueError(f"record(): field {arg!r} is required")
        for arg, value in first.items():
            if value is None:
                continue
            if arg == "reward_terms":
                self._add_stack(value)
            elif arg.startswith(IMAGE_PREFIX):
                self._add_image(arg, value)
            elif arg == "obs" and isinstance(value, Mapping):
                self._add_cat(value)
            else:
                self._add_copy(arg, value)
        if first.get("reward_terms") is None:
            self.constants["rew_terms"] = (np.dtype(np.float32), (0,), 0.0)
        others = {s.name for s in self.fields if not s.is_camera} | {"reward_terms", *self.constants}
        for spec in self.cameras:
            if camera_of(spec.name) in others:
                raise ValueError(f"record(): camera {camera_of(spec.name)!r} has the name of a field; give it another name")
        #: The `record()` arguments this schema takes.
        self.args = {
            next(iter(s.expect)) if s.kind == "copy" else ("obs" if s.kind == "cat" else "reward_terms")
            for s in self.fields
        }

    # ---- building from the first call -------------------------------------------------------
    def _check_first(self, arg: str, t: torch.Tensor, want_row: tuple[int, ...] | None) -> None:
        if t.device != self.device:
            raise ValueError(f"record(): field {arg!r}: expected device {self.device}, got {t.device}")
        if t.ndim < 1 or t.shape[0] != self.N:
            raise ValueError(f"record(): field {arg!r}: expected N={self.N} envs first, got shape {tuple(t.shape)}")
        if want_row is not None and tuple(t.shape[1:]) != want_row:
            raise ValueError(
                f"record(): field {arg!r}: expected shape {(self.N, *want_row)}, got {tuple(t.shape)}"
            )
        ring_dtype_for(arg, t.dtype)

    def _add_copy(self, arg: str, value: Any) -> None:
        if isinstance(value, Mapping):
            raise ValueError(f"record(): field {arg!r}: a dict is only accepted for obs and reward_terms")
        t = as_tensor(arg, value, self.device)
        want = _FIXED_ROWS.get(arg)
        if arg in ("obs", "act") and t.ndim == 1:
            want = ()  # one value per env is still [N, 1] in the file
        self._check_first(arg, t, want)
        if arg in ("link_pos", "link_quat"):
            if t.ndim != 3 or t.shape[2] != (3 if arg == "link_pos" else 4):
                raise ValueError(f"record(): field {arg!r}: expected shape (N, L, {3 if arg == 'link_pos' else 4}), got {tuple(t.shape)}")
            other = next((s for s in self.fields if s.name in ("link_pos", "link_quat")), None)
            if other is not None and other.row_shape[0] != t.shape[1]:
                raise ValueError(
                    f"record(): {arg!r} has {t.shape[1]} links but {other.name!r} has {other.row_shape[0]}: "
                    "link_pos and link_quat must hold the same links"
                )
        row = tuple(t.shape[1:])
        if arg in ("obs", "act"):
            row = (int(np.prod(row, dtype=np.int64)),)  # [N, D] in the file, trailing dims flattened
        ring_dtype = torch.bool if arg in ("done", "truncated") else ring_dtype_for(arg, t.dtype)
        name = _FILE_NAMES.get(arg, arg)
        if arg not in STEP_ARGS:
            if not arg.isidentifier():
                raise ValueError(f"record(): extra field name {arg!r} must be an identifier")
            if arg in RESERVED_EXTRAS:
                raise ValueError(
                    f"record(): extra field {arg!r} has the name of a member the format defines "
                    f"({', '.join(sorted(RESERVED_EXTRAS))}); give it another name"
                )
            self.extras.append(arg)
        self.fields.append(FieldSpec(name, "copy", row, ring_dtype, {arg: (tuple(t.shape), t.dtype)}))

    def _add_image(self, arg: str, value: Any) -> None:
        """A camera: ``[N, H, W]`` or ``[N, H, W, C]`` (or the detail envs' only), any numpy dtype."""
        what = f"image {camera_of(arg)!r}"
        if isinstance(value, Mapping):
            raise ValueError(f"record(): {what}: expected a tensor [N, H, W(, C)], got a dict")
        t = as_tensor(what, value, self.device)
        if t.device != self.device:
            raise ValueError(f"record(): {what}: expected device {self.device}, got {t.device}")
        check_image_shape(arg, tuple(t.shape))
        rows = (self.N,) if self.detail_envs is None else (self.N, self.detail_envs)
        if t.shape[0] not in rows:
            also = f" or the {self.detail_envs} envs of envs=" if self.detail_envs is not None else ""
            raise ValueError(f"record(): {what}: expected N={self.N} envs{also} first, got shape {tuple(t.shape)}")
        if t.dtype == torch.bfloat16:
            raise ValueError(f"record(): {what}: bfloat16 images are not supported; convert them (e.g. .float())")
        ring_dtype = ring_dtype_for(what, t.dtype)
        self.fields.append(FieldSpec(arg, "copy", tuple(t.shape[1:]), ring_dtype, {arg: (tuple(t.shape), t.dtype)},
                                     env_rows=int(t.shape[0])))

    @property
    def cameras(self) -> list[FieldSpec]:
        """The camera fields, in the order the first step gave them."""
        return [s for s in self.fields if s.is_camera]

    def _add_cat(self, obs: Mapping[str, Any]) -> None:
        if not obs:
            raise ValueError("record(): field 'obs': the dict is empty")
        expect, layout, start, dtype = {}, [], 0, None
        for key, value in obs.items():
            _check_key("obs", key)
            t = as_tensor(f"obs[{key!r}]", value, self.device)
            self._check_first(f"obs[{key!r}]", t, None)
            size = int(np.prod(t.shape[1:], dtype=np.int64))
            expect[key] = (tuple(t.shape), t.dtype)
            layout.append({"name": key, "start": start, "stop": start + size, "shape": list(t.shape[1:])})
            start += size
            dtype = t.dtype if dtype is None else torch.promote_types(dtype, t.dtype)
        self.obs_layout = layout
        self.fields.append(FieldSpec("obs", "cat", (start,), ring_dtype_for("obs", dtype), expect))

    def _add_stack(self, terms: Mapping[str, Any]) -> None:
        if not isinstance(terms, Mapping):
            raise ValueError(f"record(): reward_terms must be a dict of name -> [N] tensor, got {type(terms).__name__}")
        expect, dtype = {}, None
        for key, value in terms.items():
            _check_key("reward_terms", key)
            t = as_tensor(f"reward_terms[{key!r}]", value, self.device)
            self._check_first(f"reward_terms[{key!r}]", t, ())
            expect[key] = (tuple(t.shape), t.dtype)
            dtype = t.dtype if dtype is None else torch.promote_types(dtype, t.dtype)
        self.reward_term_names = list(expect)
        self.fields.append(FieldSpec("rew_terms", "stack", (len(expect),), ring_dtype_for("reward_terms", dtype), expect))

    # ---- every call ---------------------------------------------------------------------------
    def gather(self, given: Mapping[str, Any]) -> list[Any]:
        """Check one call's values against the schema; returns one source per field, in order.

        Raises ValueError (naming the field, expected and given shape/dtype/device) before
        anything is written, so a bad call leaves the recording as it was.
        """
        given = normalized(given)
        out: list[Any] = []
        for spec in self.fields:
            if spec.kind == "copy":
                (arg, (shape, dtype)), = spec.expect.items()
                out.append(self._checked(arg, given.get(arg), shape, dtype))
            else:
                arg = "obs" if spec.kind == "cat" else "reward_terms"
                value = given.get(arg)
                if not isinstance(value, Mapping):
                    raise ValueError(f"record(): field {arg!r}: expected a dict with keys {spec.keys}, got {type(value).__name__}")
                if len(value) != len(spec.expect) or any(k not in spec.expect for k in value):
                    missing = [k for k in spec.expect if k not in value]
                    new = [k for k in value if k not in spec.expect]
                    raise ValueError(f"record(): field {arg!r}: keys differ from the first step (missing {missing}, new {new})")
                out.append([self._checked(f"{arg}[{k!r}]", value[k], s, d) for k, (s, d) in spec.expect.items()])
        for arg, value in given.items():
            if value is not None and arg not in self.args:
                if arg.startswith(IMAGE_PREFIX):
                    fixed = sorted(camera_of(a) for a in self.args if a.startswith(IMAGE_PREFIX))
                    raise ValueError(f"record(): camera {camera_of(arg)!r} is new: the first step fixed the cameras to {fixed}")
                raise ValueError(f"record(): field {arg!r} is new: the first step fixed the fields to {sorted(self.args)}")
        return out

    def _checked(self, arg: str, value: Any, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        if value is None:
            what = f"camera {camera_of(arg)!r}" if arg.startswith(IMAGE_PREFIX) else f"field {arg!r}"
            raise ValueError(f"record(): {what} is missing; the first step gave it with shape {shape}")
        if isinstance(value, torch.Tensor):
            t = value.detach() if value.requires_grad else value
        else:
            t = as_tensor(arg, value, self.device)
        if t.shape != shape:
            if t.ndim != len(shape):
                raise ValueError(f"record(): field {arg!r}: expected rank {len(shape)} shape {shape}, got {tuple(t.shape)}")
            if t.shape[0] != shape[0]:
                raise ValueError(f"record(): field {arg!r}: expected N={shape[0]} envs, got {t.shape[0]} (shape {tuple(t.shape)})")
            raise ValueError(f"record(): field {arg!r}: expected shape {shape}, got {tuple(t.shape)}")
        if t.dtype != dtype:
            raise ValueError(f"record(): field {arg!r}: expected dtype {dtype}, got {t.dtype}")
        if t.device != self.device:
            raise ValueError(f"record(): field {arg!r}: expected device {self.device}, got {t.device}")
        return t


def _check_key(arg: str, key: Any) -> None:
    """Keys of the ``obs`` and ``reward_terms`` dicts name things in the file: strings, valid unicode."""
    if not isinstance(key, str):
        raise ValueError(f"record(): {arg} keys must be strings (they name the parts in the file), "
                         f"got {key!r} ({type(key).__name__})")
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"record(): {arg} key {key!r} is not valid unicode") from None


def normalized(given: Mapping[str, Any]) -> Mapping[str, Any]:
    """``given`` with an empty ``reward_terms`` dict treated as no reward terms, and ``images``
    expanded to one ``images/<cam>`` entry per camera."""
    given = expand_images(given)
    terms = given.get("reward_terms")
    if isinstance(terms, Mapping) and len(terms) == 0:
        return {**given, "reward_terms": None}
    return given

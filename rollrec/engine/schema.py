"""The fields of a recording, fixed by the first `record()` call, and the per-step checks.

Each ring field is filled one of three ways, chosen at the first call:

- ``copy``: one tensor ``[N, *row]`` copied as is (obs, act, rew, done, poses, extras);
- ``cat``: a dict of tensors flattened to ``[N, -1]`` and concatenated (dict obs);
- ``stack``: a dict of ``[N]`` tensors stacked along the last axis (reward terms).

Fields the format requires but the caller never gives (``truncated``, base pose) are constant:
they live outside the ring and the writer thread fills them. The checks below read only tensor
metadata (shape, dtype, device): they never synchronise with the device.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

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


def as_tensor(name: str, value: Any, device: torch.device) -> torch.Tensor:
    """``value`` as a tensor; numpy arrays are wrapped without a copy (moved if ``device`` is not CPU)."""
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, np.ndarray):
        try:
            t = torch.from_numpy(value)
        except (TypeError, ValueError):  # negative strides or a dtype torch lacks
            t = torch.as_tensor(np.array(value))
        return t if device.type == "cpu" else t.to(device)
    try:
        return torch.as_tensor(np.asarray(value), device=device)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"record(): field {name!r}: expected a tensor or numpy array, got {type(value).__name__}") from exc


@dataclass
class FieldSpec:
    """One ring field: its member name in the file, how it is filled and what each step must give."""

    name: str  # member name in the file
    kind: str  # "copy" | "cat" | "stack"
    row_shape: tuple[int, ...]  # per env, in the ring and the file
    ring_dtype: torch.dtype
    # What each step must give: for "copy" one (shape, dtype); for "cat"/"stack" one per key.
    expect: dict[str, tuple[tuple[int, ...], torch.dtype]] = field(default_factory=dict)

    @property
    def keys(self) -> list[str]:
        return list(self.expect)


class Schema:
    """Field specs fixed from the first call; `gather` checks a later call against them."""

    def __init__(self, num_envs: int, device: torch.device, first: Mapping[str, Any]):
        self.N = num_envs
        self.device = device
        self.fields: list[FieldSpec] = []
        self.obs_layout: list[dict[str, Any]] | None = None
        self.reward_term_names: list[str] = []
        self.extras: list[str] = []
        self.constants = {k: v for k, v in _CONSTANT_DEFAULTS.items() if first.get(k) is None}
        for arg in REQUIRED_ARGS:
            if first.get(arg) is None:
                raise ValueError(f"record(): field {arg!r} is required")
        for arg, value in first.items():
            if value is None:
                continue
            if arg == "reward_terms":
                self._add_stack(value)
            elif arg == "obs" and isinstance(value, Mapping):
                self._add_cat(value)
            else:
                self._add_copy(arg, value)
        if first.get("reward_terms") is None:
            self.constants["rew_terms"] = (np.dtype(np.float32), (0,), 0.0)
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
        if t.dtype.is_complex:
            raise ValueError(f"record(): field {arg!r}: complex dtype {t.dtype} is not supported")

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
        row = tuple(t.shape[1:])
        if arg in ("obs", "act"):
            row = (int(np.prod(row, dtype=np.int64)),)  # [N, D] in the file, trailing dims flattened
        ring_dtype = torch.bool if arg in ("done", "truncated") else t.dtype
        name = _FILE_NAMES.get(arg, arg)
        if arg not in STEP_ARGS:
            if not arg.isidentifier():
                raise ValueError(f"record(): extra field name {arg!r} must be an identifier")
            self.extras.append(arg)
        self.fields.append(FieldSpec(name, "copy", row, ring_dtype, {arg: (tuple(t.shape), t.dtype)}))

    def _add_cat(self, obs: Mapping[str, Any]) -> None:
        if not obs:
            raise ValueError("record(): field 'obs': the dict is empty")
        expect, layout, start, dtype = {}, [], 0, None
        for key, value in obs.items():
            t = as_tensor(f"obs[{key!r}]", value, self.device)
            self._check_first(f"obs[{key!r}]", t, None)
            size = int(np.prod(t.shape[1:], dtype=np.int64))
            expect[key] = (tuple(t.shape), t.dtype)
            layout.append({"name": key, "start": start, "stop": start + size, "shape": list(t.shape[1:])})
            start += size
            dtype = t.dtype if dtype is None else torch.promote_types(dtype, t.dtype)
        self.obs_layout = layout
        self.fields.append(FieldSpec("obs", "cat", (start,), dtype, expect))

    def _add_stack(self, terms: Mapping[str, Any]) -> None:
        if not isinstance(terms, Mapping):
            raise ValueError(f"record(): reward_terms must be a dict of name -> [N] tensor, got {type(terms).__name__}")
        expect, dtype = {}, None
        for key, value in terms.items():
            t = as_tensor(f"reward_terms[{key!r}]", value, self.device)
            self._check_first(f"reward_terms[{key!r}]", t, ())
            expect[str(key)] = (tuple(t.shape), t.dtype)
            dtype = t.dtype if dtype is None else torch.promote_types(dtype, t.dtype)
        self.reward_term_names = list(expect)
        self.fields.append(FieldSpec("rew_terms", "stack", (len(expect),), dtype or torch.float32, expect))

    # ---- every call ---------------------------------------------------------------------------
    def gather(self, given: Mapping[str, Any]) -> list[Any]:
        """Check one call's values against the schema; returns one source per field, in order.

        Raises ValueError (naming the field, expected and given shape/dtype/device) before
        anything is written, so a bad call leaves the recording as it was.
        """
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
                raise ValueError(f"record(): field {arg!r} is new: the first step fixed the fields to {sorted(self.args)}")
        return out


    def _checked(self, arg: str, value: Any, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        if value is None:
            raise ValueError(f"record(): field {arg!r} is missing; the first step gave it with shape {shape}")
        t = value if isinstance(value, torch.Tensor) else as_tensor(arg, value, self.device)
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

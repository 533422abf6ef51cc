"""Volume control: which fields, envs and steps a recording keeps, and in which dtypes.

`VolumePlan` holds the `Recorder`'s volume options (`rollrec.engine.options.Volume`), checked
when the recorder is built (``envs``, ``every``, ``capture``/``window``) or at the first
`record` (field names, which only the first step fixes). `plan` then says, for every field of
the schema, where its rows go:

- ``"all"``: every env, every kept step: a member ``[T, N, ...]`` (a *light* field);
- ``"detail"``: the ``envs=`` envs only: a member ``[T, len(envs), ...]`` (a *heavy* field);
- ``"window"``: the last ``window`` kept steps of each captured episode, episodes one after
  another: a member ``[R, ...]`` (heavy, with ``capture=``).

Cameras (``images=``, `rollrec.engine.images`) are fields named ``images/<cam>``; ``fields=`` and
``all_env_fields=`` name them by the camera's name, they are heavy unless named there, and they
keep their dtype. Fields left out by ``fields=`` are not kept at all. Every selection happens on the device in
`record` (see `rollrec.engine.volume_record`); only what is kept is copied to the host.

With ``every=k`` a kept row stands for k recorded steps (the first of them): obs, actions, poses
and extras are those of the first step; ``rew`` and ``rew_terms`` are summed over the k steps and
``done`` and ``truncated`` are OR-ed over them, so no episode end and no reward is lost. Exact
episode boundaries and returns (in the original step numbering) are in the episode index.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from rollrec.engine.schema import NUMPY_DTYPES, Schema

if TYPE_CHECKING:
    from rollrec.engine.options import Volume

#: Fields every env keeps for every step by default when ``envs=`` or ``capture=`` is given.
LIGHT_FIELDS = ("rew", "done", "truncated", "rew_terms", "base_pos", "base_quat")
#: Fields `fields=` cannot leave out: the episode structure and what the viewer draws.
REQUIRED_FIELDS = ("rew", "done", "truncated", "base_pos", "base_quat")
#: How ``every=k`` folds the k steps of a kept row into it (the other fields keep the first step).
FOLDED = {"rew": "sum", "rew_terms": "sum", "done": "or", "truncated": "or"}
#: Fields whose stored dtype must stay a float (``dtypes=`` may pick another float).
_FLOAT_ONLY = ("rew", "rew_terms", "base_pos", "base_quat", "link_pos", "link_quat")
_ALIASES = {"reward_terms": "rew_terms"}

#: ``capture=`` as a callable: ``fn(ends) -> [N] bool`` on the recording device (see `EpisodeEnds`).
CaptureFn = Callable[["EpisodeEnds"], torch.Tensor]


@dataclass(frozen=True)
class EpisodeEnds:
    """What a ``capture=`` callable sees at every recorded step (all ``[N]``, on the recording device).

    ``done``: the episodes ending at this step; ``terminated`` / ``truncated``: how (both False
    where ``done`` is); ``returns``: float64, each env's episode return so far, this step's
    reward included; ``length``: int64, steps of the episode so far, this one included (an
    episode under way when the recording began counts from the first recorded step); ``step``:
    the step number (0 for the first `record`); ``fields``: this step's `record` arguments as
    given. The callable runs at every step and must not synchronise (no ``.item()``, no
    ``if tensor``); its result is AND-ed with ``done``.
    """

    step: int
    done: torch.Tensor
    terminated: torch.Tensor
    truncated: torch.Tensor
    returns: torch.Tensor
    length: torch.Tensor
    fields: Mapping[str, Any]


@dataclass(frozen=True)
class Trigger:
    """Which ended episodes are captured: ``"terminated"``, ``return < threshold``, or a callable."""

    kind: str  # "terminated" | "threshold" | "callable"
    threshold: float | None = None
    fn: CaptureFn | None = None

    @classmethod
    def parse(cls, capture: Any) -> Trigger:
        if isinstance(capture, str):
            if capture != "terminated":
                raise ValueError(
                    f"capture={capture!r}: give 'terminated', a return threshold (a number: episodes whose "
                    "return is below it) or a callable"
                )
            return cls("terminated")
        if isinstance(capture, (int, float, np.integer, np.floating)) and not isinstance(capture, bool):
            if not math.isfinite(float(capture)):
                raise ValueError(f"capture={capture!r}: a return threshold must be a finite number")
            return cls("threshold", threshold=float(capture))
        if callable(capture):
            return cls("callable", fn=capture)
        raise ValueError(f"capture must be 'terminated', a number or a callable, got {type(capture).__name__}")

    def describe(self) -> str:
        """How the trigger reads in ``meta`` (a callable by its name)."""
        if self.kind == "terminated":
            return "terminated"
        if self.kind == "threshold":
            return f"return < {self.threshold!r}"
        return f"callable {getattr(self.fn, '__qualname__', type(self.fn).__name__)}"

    def __call__(self, ends: EpisodeEnds) -> torch.Tensor:
        """``[N]`` bool: the ending episodes to capture (no device sync)."""
        if self.kind == "terminated":
            return ends.terminated
        if self.kind == "threshold":
            return ends.done & (ends.returns < self.threshold)
        out = self.fn(ends)
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != tuple(ends.done.shape) or out.device != ends.done.device:
            got = f"{type(out).__name__} {tuple(out.shape)} on {out.device}" if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(f"capture callable must return a [{ends.done.shape[0]}] tensor on {ends.done.device}, got {got}")
        return ends.done & (out if out.dtype == torch.bool else out != 0)


def _names(value: Iterable[str], what: str) -> tuple[str, ...]:
    if isinstance(value, str):
        raise ValueError(f"{what} takes a list of field names, got the string {value!r}")
    out = []
    for name in value:
        if not isinstance(name, str):
            raise ValueError(f"{what}: field names are strings, got {name!r}")
        out.append(_ALIASES.get(name, name))
    return tuple(out)


def env_selection(envs: Any, num_envs: int) -> tuple[int, ...]:
    """``envs=`` (a list or range of env ids, or a bool mask of length N) as sorted unique ids."""
    if isinstance(envs, torch.Tensor):
        envs = envs.detach().cpu().numpy()
    arr = np.asarray(list(envs) if isinstance(envs, range) else envs)
    if arr.dtype == np.bool_:
        if arr.shape != (num_envs,):
            raise ValueError(f"envs: a bool mask must have shape ({num_envs},), got {arr.shape}")
        return tuple(int(e) for e in np.flatnonzero(arr))
    if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iu"):
        raise ValueError(f"envs must be a list or range of env ids or a bool mask of {num_envs}, got {envs!r:.80}")
    ids = arr.astype(np.int64)
    bad = ids[(ids < 0) | (ids >= num_envs)]
    if bad.size:
        raise ValueError(f"envs: env {int(bad[0])} out of range (0..{num_envs - 1})")
    unique, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        raise ValueError(f"envs: env {int(unique[counts > 1][0])} is given twice")
    return tuple(int(e) for e in unique)


@dataclass(frozen=True)
class VolumePlan:
    """The `Recorder`'s volume options, checked (see the module docstring)."""

    num_envs: int
    envs: tuple[int, ...] | None = None
    all_env_fields: tuple[str, ...] = LIGHT_FIELDS
    every: int = 1
    dtypes: Mapping[str, torch.dtype] | None = None
    fields: tuple[str, ...] | None = None
    trigger: Trigger | None = None
    window: int | None = None

    @classmethod
    def from_options(cls, num_envs: int, options: Volume) -> VolumePlan | None:
        """The options as a `VolumePlan`, or None when none is given (a plain format-v1 recording)."""
        _check_combination(options)
        o = options
        if o.envs is None and o.capture is None and o.every == 1 and not o.dtypes and o.fields is None:
            return None
        cast = {}
        for name, dtype in (o.dtypes or {}).items():
            cast[_ALIASES.get(name, name)] = _torch_dtype(name, dtype)
        return cls(
            num_envs=int(num_envs),
            envs=None if o.envs is None else env_selection(o.envs, num_envs),
            all_env_fields=LIGHT_FIELDS if o.all_env_fields is None else _names(o.all_env_fields, "all_env_fields"),
            every=int(o.every),
            dtypes=cast,
            fields=None if o.fields is None else _names(o.fields, "fields"),
            trigger=None if o.capture is None else Trigger.parse(o.capture),
            window=None if o.window is None else int(o.window),
        )

    @property
    def has_index(self) -> bool:
        """Whether the file holds an episode index (the rows alone would not give every episode exactly)."""
        return self.envs is not None or self.trigger is not None or self.every > 1

    def describe(self) -> dict[str, Any]:
        """The options as JSON for ``meta["volume"]``."""
        return {
            "detail_envs": None if self.envs is None else len(self.envs),
            "all_env_fields": list(self.all_env_fields) if self.envs is not None or self.trigger else None,
            "every": self.every,
            "dtypes": {k: str(v).removeprefix("torch.") for k, v in (self.dtypes or {}).items()},
            "fields": None if self.fields is None else list(self.fields),
            "capture": None if self.trigger is None else self.trigger.describe(),
            "window": self.window,
        }


def _check_combination(o: Volume) -> None:
    """ValueError naming the option for values out of range and options that do not go together."""
    every, capture, window = o.every, o.capture, o.window
    if isinstance(every, bool) or not isinstance(every, (int, np.integer)) or every < 1:
        raise ValueError(f"every must be an integer >= 1, got {every!r}")
    if capture is None and window is not None:
        raise ValueError("window= is the length kept of each captured episode: give capture= too")
    if capture is not None:
        if window is None:
            raise ValueError("capture= needs window=W: the last W steps of each captured episode are kept")
        if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 1:
            raise ValueError(f"window must be an integer >= 1, got {window!r}")
        if o.envs is not None:
            raise ValueError(
                "envs= and capture= cannot be combined: envs= keeps every step of some envs, capture= the last "
                "steps of chosen episodes of any env; pick one"
            )
    if o.all_env_fields is not None and o.envs is None and capture is None:
        raise ValueError("all_env_fields= says what the envs without detail keep: give envs= or capture= too")


def _torch_dtype(name: str, dtype: Any) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        out = dtype
    else:
        try:
            np_dtype = np.dtype(dtype)
        except TypeError:
            raise ValueError(f"dtypes[{name!r}]: {dtype!r} is not a dtype") from None
        out = next((t for t, d in NUMPY_DTYPES.items() if d == np_dtype), None)
        if out is None:
            raise ValueError(f"dtypes[{name!r}]: {np_dtype} cannot be stored")
    if out not in NUMPY_DTYPES:
        raise ValueError(f"dtypes[{name!r}]: {out} has no numpy equivalent, so a plain np.load could not read the file")
    return out


@dataclass(frozen=True)
class FieldPlan:
    """Where one schema field goes: ``where`` is ``"all"``, ``"detail"`` or ``"window"``."""

    index: int  # position in `Schema.fields`
    name: str
    where: str
    dtype: torch.dtype
    row_shape: tuple[int, ...]
    fold: str | None  # "sum" | "or" | None: how every=k folds the steps of a row


def plan(volume: VolumePlan, schema: Schema) -> tuple[list[FieldPlan], dict[str, str]]:
    """The placement of every kept field of ``schema``, and of the constant members.

    Returns ``(plans, constants)``: the plans in schema order (fields left out by ``fields=`` are
    absent), and ``{constant member: where}``. Raises ValueError for names in ``fields``,
    ``all_env_fields`` or ``dtypes`` that the first step did not give, and for dtypes a field
    cannot take.
    """
    volume = _camera_names(volume, schema)
    _check_names(volume, schema)
    _check_dtypes(volume, schema)
    keep = None if volume.fields is None else set(volume.fields) | set(REQUIRED_FIELDS)
    split = volume.envs is not None or volume.trigger is not None
    heavy = "detail" if volume.envs is not None else "window"

    def where(name: str) -> str:
        return heavy if split and name not in volume.all_env_fields else "all"

    for spec in schema.cameras:
        if spec.env_rows != schema.N and spec.env_rows is not None and where(spec.name) != "detail" and (
                keep is None or spec.name in keep):
            raise ValueError(f"record(): camera {spec.name[len('images/'):]!r} gave the {spec.env_rows} detail envs' images "
                             "only, but it is kept for every env (all_env_fields=): give all N envs' images")

    plans = []
    for i, spec in enumerate(schema.fields):
        if keep is not None and spec.name not in keep:
            continue
        dtype = (volume.dtypes or {}).get(spec.name)
        if dtype is None:
            dtype = torch.float32 if spec.name == "rew_terms" else spec.ring_dtype
        plans.append(FieldPlan(i, spec.name, where(spec.name), dtype, spec.row_shape, FOLDED.get(spec.name)))
    constants = {name: where(name) for name in schema.constants if keep is None or name in keep or name == "rew_terms"}
    return plans, constants


def _camera_names(volume: VolumePlan, schema: Schema) -> VolumePlan:
    """``volume`` with camera names in ``fields`` and ``all_env_fields`` as their fields' names (``images/<cam>``)."""
    cameras = {s.name[len("images/"):]: s.name for s in schema.cameras}
    if not cameras:
        return volume
    fields = None if volume.fields is None else tuple(cameras.get(n, n) for n in volume.fields)
    light = tuple(cameras.get(n, n) for n in volume.all_env_fields)
    return dataclasses.replace(volume, fields=fields, all_env_fields=light)


def _check_names(volume: VolumePlan, schema: Schema) -> None:
    """ValueError for a name in ``fields``, ``all_env_fields`` or ``dtypes`` the first step did not give."""
    given = [s.name[len("images/"):] if s.is_camera else s.name for s in schema.fields]
    known = set(given) | set(schema.constants)
    named = {s.name: s.name[len("images/"):] for s in schema.cameras}
    for what, names in (("fields", volume.fields or ()), ("all_env_fields", volume.all_env_fields),
                        ("dtypes", tuple(volume.dtypes or ()))):
        unknown = [n for n in names if named.get(n, n) not in known]
        if unknown:
            raise ValueError(f"{what}: no field named {unknown[0]!r}; the first step gave {sorted(known)}")


def _check_dtypes(volume: VolumePlan, schema: Schema) -> None:
    """ValueError for a dtype a field cannot be stored in."""
    cameras = {s.name[len("images/"):] for s in schema.cameras}
    for name, dtype in (volume.dtypes or {}).items():
        if name in cameras:
            raise ValueError(f"dtypes[{name!r}]: camera images keep their dtype (their codec depends on it)")
        if name in ("done", "truncated"):
            raise ValueError(f"dtypes[{name!r}]: {name} is stored as bool")
        if name in _FLOAT_ONLY and not dtype.is_floating_point:
            raise ValueError(f"dtypes[{name!r}]: {name} must stay a float, got {dtype}")
        if name in schema.constants:
            raise ValueError(f"dtypes[{name!r}]: {name} was not given to record(), so there is nothing to cast")


def file_version(volume: VolumePlan, plans: list[FieldPlan], constants: Mapping[str, str]) -> int:
    """1 when the file these options write satisfies format v1 (every member ``[T, N, ...]``, every v1
    member present, reward terms float32, no episode index), else 2. As numpy's ``.npy`` writer picks
    the oldest header version that can hold an array, a v1 file stays readable by every rollrec."""
    if volume.has_index or any(p.where != "all" for p in plans) or any(w != "all" for w in constants.values()):
        return 2
    names = {p.name for p in plans} | set(constants)
    terms = next((p.dtype for p in plans if p.name == "rew_terms"), torch.float32)
    v1_members = ("obs", "act", "rew", "done", "truncated", "base_pos", "base_quat", "rew_terms")
    return 1 if all(n in names for n in v1_members) and terms == torch.float32 else 2


__all__ = ["LIGHT_FIELDS", "REQUIRED_FIELDS", "EpisodeEnds", "FieldPlan", "Trigger", "VolumePlan", "plan"]

"""The adapter protocol, `Step`, and `adapt`: how `RolloutRecorder` sees any batched env.

An env adapter wraps one framework's env and gives the recorder the same view of all of them:

- ``num_envs``, ``dt`` (seconds of simulated time per step), ``name``, ``quat_order``
  (``"wxyz"`` or ``"xyzw"``: the order of the quaternions `pose` returns), ``link_names`` (or
  None), ``meta`` (JSON-serialisable entries for the file's ``meta``);
- ``reset() -> obs``: reset every env, return what the policy sees first;
- ``pose() -> dict``: ``base_pos [N, 3]``, ``base_quat [N, 4]``, ``link_pos [N, L, 3]``,
  ``link_quat [N, L, 4]`` (any may be missing) of the state the current obs describes. The
  tensors are the adapter's own: the next ``step()`` does not change them (an adapter whose
  framework returns views of simulator memory copies them on the device: no host sync);
- ``step(action) -> Step``: advance every env once. Finished envs are reset before it returns
  (by the env itself, or by the adapter the way the framework's own runner does it), so
  ``Step.obs`` is what the policy sees next.

Optional: ``record_obs(obs)`` (the obs as `Recorder.record` takes it, e.g. a TensorDict as a dict),
``policy_input(obs, step)`` (what the framework's own loop hands the policy, e.g. ProtoMotions'
agent-prepared TensorDict), ``policy_kwargs`` (keyword arguments the framework's policies take,
e.g. ``deterministic=True``), ``robot_model()`` (the robot's `RobotModel`) and, for MuJoCo-based envs, ``mj_model`` and ``link_body_ids`` (the ``MjModel`` body id of each
link in ``link_names`` order).

`adapt` picks the adapter: the framework's own env class first (checked only when its module is
already imported: an env of that class means the framework is loaded; nothing is imported to
check), then duck typing, and `RolloutRecorder(env, adapter="mjlab")` forces one by name.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import torch

QUAT_ORDERS = ("wxyz", "xyzw")


@dataclass
class Step:
    """One step of every env, as the recorder stores it.

    ``obs``: what the policy sees next (after resets). ``rew [N]``; ``done [N]`` bool: the
    episode ended with this step (terminated or truncated); ``truncated [N]`` bool: ended by a
    time limit; ``reward_terms {name: [N]}`` per-env terms that sum to ``rew``; ``extras
    {name: [N, ...]}`` more per-env fields for the file; ``act``: the action the env applied when
    it differs from the policy's (clamped by a wrapper), else None. Tensors on the env's device,
    or numpy.
    """

    obs: Any
    rew: Any
    done: Any
    truncated: Any
    reward_terms: dict[str, Any] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)
    act: Any = None


@runtime_checkable
class EnvAdapter(Protocol):
    """What `RolloutRecorder` needs from an env (see the module docstring for the contract)."""

    num_envs: int
    dt: float
    name: str
    quat_order: str
    link_names: list[str] | None
    meta: dict[str, Any]

    def reset(self) -> Any: ...

    def pose(self) -> dict[str, Any]: ...

    def step(self, action: Any) -> Step: ...


class BaseAdapter:
    """Defaults shared by rollrec's adapters. Subclasses set the attributes and implement
    `reset`, `pose`, `step`, and the class methods `is_instance` (the framework's real class)
    and `looks_like` (duck typing)."""

    #: The name ``RolloutRecorder(env, adapter=...)`` forces this adapter with.
    key = ""
    #: What `looks_like` checks, for the error when nothing fits.
    duck_attributes: tuple[str, ...] = ()
    quat_order = "wxyz"
    link_names: list[str] | None = None
    mj_model: Any = None
    link_body_ids: list[int] | None = None

    def __init__(self) -> None:
        self.meta: dict[str, Any] = {}

    @classmethod
    def is_instance(cls, env: Any) -> bool:
        return False

    @classmethod
    def looks_like(cls, env: Any) -> bool:
        return False

    def record_obs(self, obs: Any) -> Any:
        return as_field_dict(obs)

    def pose(self) -> dict[str, Any]:
        return {}


class AdapterNotFoundError(TypeError):
    """No adapter fits an env; the message says what was found."""


def loaded_class(module: str, name: str) -> type | None:
    """``module.name`` if ``module`` is already imported, else None (never imports anything)."""
    mod = sys.modules.get(module)
    cls = getattr(mod, name, None) if mod is not None else None
    return cls if isinstance(cls, type) else None


def unwrap_chain(env: Any, limit: int = 32) -> list[Any]:
    """``env`` and what it wraps (``.env``, then ``.unwrapped``), outermost first."""
    chain = [env]
    while len(chain) < limit:
        inner = getattr(chain[-1], "env", None)
        if inner is None or any(inner is e for e in chain):
            break
        chain.append(inner)
    try:
        last = getattr(chain[-1], "unwrapped", None)
    except (AttributeError, NotImplementedError, RuntimeError):  # wrappers that do not support it
        last = None
    if last is not None and not any(last is e for e in chain):
        chain.append(last)
    return chain


def find_instance(env: Any, classes: tuple[type, ...]) -> Any:
    """The first object of ``unwrap_chain(env)`` that is an instance of ``classes``, else None."""
    if not classes:
        return None
    return next((e for e in unwrap_chain(env) if isinstance(e, classes)), None)


def owned(t: Any) -> Any:
    """A copy of ``t`` on its own device (an async device copy on CUDA: no host sync)."""
    if isinstance(t, torch.Tensor):
        return t.clone()
    return t.copy() if hasattr(t, "copy") else t


def as_field_dict(obs: Any) -> Any:
    """``obs`` as `Recorder.record` takes it: a TensorDict (or any mapping-like with
    ``items()`` and ``batch_size``) becomes a plain dict of its tensors, nested keys joined by
    ``/``; anything else is returned as is."""
    if hasattr(obs, "items") and hasattr(obs, "batch_size"):  # TensorDict (a Mapping in some versions)
        return _flatten(obs)
    if isinstance(obs, Mapping) and any(_is_mapping_like(v) for v in obs.values()):
        return _flatten(obs)
    return obs


def _is_mapping_like(v: Any) -> bool:
    return isinstance(v, Mapping) or (hasattr(v, "items") and hasattr(v, "batch_size"))


def _flatten(obs: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in obs.items():
        name = f"{prefix}{key}"
        if _is_mapping_like(value):
            out.update(_flatten(value, name + "/"))
        else:
            out[name] = value
    return out


# ---- picking an adapter -------------------------------------------------------------------------
#: name -> (module, class), in the order `adapt` tries them.
ADAPTERS: dict[str, tuple[str, str]] = {
    "walker": ("rollrec.adapters.walker", "WalkerAdapter"),
    "isaaclab": ("rollrec.adapters.isaaclab", "IsaacLabAdapter"),
    "isaaclab_direct": ("rollrec.adapters.isaaclab", "IsaacLabDirectAdapter"),
    "mjlab": ("rollrec.adapters.mjlab", "MjlabAdapter"),
    "protomotions_genesis": ("rollrec.adapters.protomotions_genesis", "ProtoMotionsGenesisAdapter"),
    "protomotions": ("rollrec.adapters.protomotions", "ProtoMotionsAdapter"),
    "genesis": ("rollrec.adapters.genesis", "GenesisEnvAdapter"),
    "gymnasium": ("rollrec.adapters.gymnasium", "GymVectorAdapter"),
}


def adapter_class(name: str) -> type[BaseAdapter]:
    """The adapter class registered under ``name`` (see `ADAPTERS`)."""
    if name not in ADAPTERS:
        raise ValueError(f"unknown adapter {name!r}: expected one of {sorted(ADAPTERS)}")
    module, cls = ADAPTERS[name]
    return getattr(importlib.import_module(module), cls)


def adapt(env: Any, adapter: str | None = None, **kwargs: Any) -> Any:
    """The adapter for ``env``: what `RolloutRecorder` steps and records.

    The framework's real env classes are checked first (only those whose module is already
    imported: nothing is imported to look), then duck typing.

    Args:
        env: the env (any wrapper chain). One that already is an adapter (has ``pose``,
            ``quat_order`` and ``step``) is returned as is.
        adapter: force one of `ADAPTERS` by name (``"mjlab"``, ``"isaaclab"``, ``"gymnasium"``, ...).
        **kwargs: passed to the adapter's constructor (e.g. ``entity="robot"`` for mjlab).

    Returns:
        The adapter.

    Raises:
        AdapterNotFoundError: nothing fits; the message names the type, its wrapper chain and the
            attributes looked for.
    """
    if adapter is None and not kwargs and all(hasattr(env, a) for a in ("pose", "quat_order", "step")):
        return env
    if adapter is not None:
        return adapter_class(adapter)(env, **kwargs)
    classes = [adapter_class(name) for name in ADAPTERS]
    for cls in classes:
        if cls.is_instance(env):
            return cls(env, **kwargs)
    for cls in classes:
        if cls.looks_like(env):
            return cls(env, **kwargs)
    chain = " -> ".join(f"{type(e).__module__}.{type(e).__qualname__}" for e in unwrap_chain(env))
    checked = "; ".join(f"{name}: {', '.join(adapter_class(name).duck_attributes)}" for name in ADAPTERS)
    present = sorted(a for a in {a for c in classes for a in c.duck_attributes} if hasattr(env, a))
    raise AdapterNotFoundError(
        f"no adapter for {type(env).__name__} (wrapper chain: {chain}). None of the known env classes "
        f"matched and the attributes looked for were not all there ({checked}); it has {present or 'none of them'}. "
        f"Force one with adapter=<{'|'.join(ADAPTERS)}>, or pass an object with num_envs, dt, name, quat_order, "
        "link_names, meta, reset(), pose() and step() -> rollrec.adapters.Step."
    )

"""`make_policy`: turn a checkpoint into a callable ``obs -> action`` that runs without autograd."""

from __future__ import annotations

import os
import pickle
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from rollrec.loop.checkpoints import (
    checkpoint_kind,
    fit_state_dict,
    load_into,
    training_checkpoint_layout,
    weights_of,
)
from rollrec.loop.rsl_rl_actor import RslRlActor


def make_policy(
    checkpoint: str | os.PathLike | torch.nn.Module | Callable[[Any], Any],
    *,
    module: torch.nn.Module | None = None,
    device: str | torch.device | None = None,
    prefix: str | None = None,
    activation: str = "elu",
    obs_groups: Sequence[str] = ("policy",),
    weights_only: bool = True,
) -> Callable[[Any], Any]:
    """A callable ``policy(obs) -> action`` running under `torch.inference_mode`.

    ``checkpoint`` is one of:

    - a TorchScript file (``torch.jit.save``; Isaac Lab's exported ``policy.pt``) or a
      `torch.export` program (``torch.export.save``, usually ``.pt2``): used as saved;
    - an rsl_rl checkpoint (Isaac Lab's and Genesis' ``model_<iter>.pt``: ``model_state_dict``, or
      rsl_rl >= 4's ``actor_state_dict``): without ``module`` the actor MLP is rebuilt from the
      weights' shapes (`rollrec.loop.rsl_rl_actor.RslRlActor`, its obs normalizer included). With
      ``module`` (your ``ActorCritic``) the weights are loaded into it and ``module.act_inference``
      acts;
    - a Lightning ``.ckpt`` (``state_dict`` with keys such as ``model.net.0.weight``), a
      ProtoMotions agent checkpoint (``{"model": ..., "epoch": ...}``) or a plain state dict:
      ``module`` is the network to load it into. ProtoMotions: pass the agent's ``model`` built
      from the run's config; it acts with ``module.act(obs)`` where it has one (the
      ProtoMotions-Genesis fork's ``PPOModel.act``, the mean action), else ``module(obs)``, taking
      ``"mean_action"`` from a returned TensorDict (ProtoMotions' evaluator);
    - an ``nn.Module`` or any callable, used as is.

    The layouts are named in `rollrec.loop.checkpoints`. The network is put in eval mode;
    ``policy.module`` is it.

    Args:
        checkpoint: a checkpoint file (above), an ``nn.Module`` or a callable.
        module: the network to load a state dict into (see above).
        device: where the network runs (default: where it was saved or built); ``"cuda"`` without
            a usable GPU is refused up front.
        prefix: a key prefix to strip from the state dict. Without it, keys are matched to
            ``module``'s as they are, or with the one prefix (``"model."``, ``"actor."``) whose
            stripping gives exactly the module's keys.
        activation: the rebuilt rsl_rl actor's activation, as in the run's config (rsl_rl's
            default ``"elu"``).
        obs_groups: for the rebuilt rsl_rl actor, the entries of a mapping obs (such as rsl_rl 3's
            ``TensorDict``) concatenated into its input.
        weights_only: ``False`` lets `torch.load` unpickle arbitrary objects: only for files you
            trust.

    Returns:
        The policy: ``policy(obs) -> action``.

    Raises:
        ValueError: keys that do not match ``module``'s (a few missing and unexpected ones named).
        RuntimeError: ``device="cuda"`` where this torch or machine has no usable GPU.
        TypeError: a ``checkpoint`` that is neither a path, an ``nn.Module`` nor a callable.
    """
    _check_device(device)
    call = None
    if isinstance(checkpoint, (str, os.PathLike)):
        net, call = _load(os.fspath(checkpoint), module, device, prefix, activation, obs_groups, weights_only)
    elif isinstance(checkpoint, torch.nn.Module) or callable(checkpoint):
        net = checkpoint
    else:
        raise TypeError(f"make_policy: expected a path, an nn.Module or a callable, got {type(checkpoint).__name__}")
    if isinstance(net, torch.nn.Module):
        try:
            net.eval()
            if device is not None:
                net.to(device)
        except NotImplementedError:  # torch.export modules refuse eval()/to(): they are already fixed
            pass
    act = call or net

    def policy(obs: Any) -> Any:
        with torch.inference_mode():
            return act(obs)

    policy.module = net  # type: ignore[attr-defined]
    return policy


def _check_device(device: str | torch.device | None) -> None:
    if device is None:
        return
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        build = "has no CUDA support" if torch.version.cuda is None else "sees no CUDA device"
        raise RuntimeError(f"make_policy: device={str(device)!r} but this torch ({torch.__version__}) {build}; "
                           f"pass device='cpu'")


def _load(path: str, module: torch.nn.Module | None, device: Any, prefix: str | None, activation: str,
          obs_groups: Sequence[str], weights_only: bool) -> tuple[Any, Callable[[Any], Any] | None]:
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such checkpoint")
    kind = checkpoint_kind(path)
    if kind == "torchscript":
        return torch.jit.load(path, map_location=device), None
    if kind == "export":
        return torch.export.load(path).module(), None
    state = _torch_load(path, weights_only)
    layout = training_checkpoint_layout(state)
    if layout in ("rsl_rl", "rsl_rl_4") and module is None and prefix is None:
        try:
            return RslRlActor.from_checkpoint(state, layout, activation=activation, obs_groups=obs_groups), None
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in weights_of(state, layout).values()):
        raise ValueError(f"{path}: holds a {type(state).__name__}, not a state dict or a known training checkpoint "
                         f"(rsl_rl, Lightning, ProtoMotions)")
    if module is None:
        hint = {"lightning": "the LightningModule, or the network inside it",
                "protomotions": "the agent's model, built from the run's config.yaml",
                }.get(layout or "", "the network to load it into")
        raise ValueError(f"{path}: holds a {layout or 'plain'} state dict; pass module= ({hint})")
    weights = weights_of(state, layout)
    if layout == "protomotions":
        _materialize_protomotions(module, weights)
    try:
        load_into(module, fit_state_dict(weights, module, prefix), path)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}" if not str(exc).startswith(path) else str(exc)) from None
    return module, _inference_call(module, layout)


def _torch_load(path: str, weights_only: bool) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=weights_only)
    except pickle.UnpicklingError as exc:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
        if found:
            raise ValueError(f"{path}: holds Python objects beyond tensors (first: {found.group(1)}); if you trust "
                             f"the file, pass weights_only=False") from None
        raise ValueError(f"{path}: not a TorchScript, torch.export or torch.save checkpoint "
                         f"(UnpicklingError: {_last_line(exc)})") from None
    except Exception as exc:  # noqa: BLE001 (torch.load of junk raises anything: EOFError, struct.error...)
        raise ValueError(f"{path}: not a TorchScript, torch.export or torch.save checkpoint "
                         f"({exc.__class__.__name__}: {_last_line(exc)})") from None


def _materialize_protomotions(module: torch.nn.Module, weights: Mapping[str, Any]) -> None:
    """As ProtoMotions' ``BaseAgent._load_model_state_dict``: its lazy ``RunningMeanStd`` buffers
    and lazily-owned modules are created from the checkpoint's shapes before the load."""
    try:
        from protomotions.agents.utils.normalization import materialize_lazy_running_stats_from_state_dict
    except ImportError:  # the fork and older ProtoMotions have neither
        pass
    else:
        materialize_lazy_running_stats_from_state_dict(module, dict(weights))
    materialize = getattr(module, "materialize_from_state_dict", None)
    if callable(materialize):
        materialize(dict(weights))


def _inference_call(module: torch.nn.Module, layout: str | None) -> Callable[[Any], Any] | None:
    """How the framework that wrote ``layout`` acts with its network, deterministically."""
    if layout in ("rsl_rl", "rsl_rl_4") and callable(getattr(module, "act_inference", None)):
        return module.act_inference  # rsl_rl OnPolicyRunner.get_inference_policy
    if layout == "protomotions":
        if callable(getattr(module, "act", None)):
            return module.act  # ProtoMotions-Genesis PPOModel.act(input_dict, mean=True)

        def mean_action(obs: Any) -> Any:  # ProtoMotions BaseEvaluator: model(obs_td)["mean_action"]
            out = module(obs)
            return out["mean_action"] if hasattr(out, "keys") and "mean_action" in out.keys() else out  # noqa: SIM118 (TensorDict has no `in`)

        return mean_action
    return None


def _last_line(exc: BaseException) -> str:
    """The most specific line of a (multi-line) torch error."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip() and not ln.strip().startswith("Check the")]
    return lines[-1][:200] if lines else exc.__class__.__name__

"""`make_policy`: turn a checkpoint into a callable ``obs -> action`` that runs without autograd."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import torch


def make_policy(
    checkpoint: str | os.PathLike | torch.nn.Module | Callable[[Any], Any],
    *,
    module: torch.nn.Module | None = None,
    device: str | torch.device | None = None,
) -> Callable[[Any], Any]:
    """A callable ``policy(obs) -> action`` running under `torch.inference_mode`.

    ``checkpoint`` is a TorchScript file (``torch.jit.save``), a `torch.export` program file
    (``torch.export.save``, usually ``.pt2``), a state dict file (then ``module`` is the network
    to load it into), or an ``nn.Module``/callable used as is. ``device``: where the module runs
    (default: where it was saved or built). The module is put in eval mode.
    """
    if isinstance(checkpoint, (str, os.PathLike)):
        net = _load(os.fspath(checkpoint), module, device)
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

    def policy(obs: Any) -> Any:
        with torch.inference_mode():
            return net(obs)

    policy.module = net  # type: ignore[attr-defined]
    return policy


def _load(path: str, module: torch.nn.Module | None, device: Any) -> Any:
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such checkpoint")
    errors = []
    try:
        return torch.jit.load(path, map_location=device)
    except Exception as exc:  # noqa: BLE001 (not TorchScript: try the next kind)
        errors.append(f"TorchScript: {exc.__class__.__name__}")
    try:
        program = torch.export.load(path)
        return program.module()
    except Exception as exc:  # noqa: BLE001 (not torch.export: try the next kind)
        errors.append(f"torch.export: {exc.__class__.__name__}")
    try:
        state = torch.load(path, map_location=device or "cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 (every kind failed: one error names them all)
        errors.append(f"state dict: {exc.__class__.__name__}")
        raise ValueError(f"{path}: not a TorchScript, torch.export or state-dict checkpoint ({'; '.join(errors)})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if module is None:
        raise ValueError(f"{path}: holds a state dict; pass module= (the network to load it into)")
    module.load_state_dict(state)
    return module

"""What a checkpoint file holds, and fitting a state dict to a module.

`checkpoint_kind` tells the three torch file kinds apart from the zip's member names, so that
each is opened by its own loader only (trying `torch.export.load` on other files logs a
deserialisation traceback). `training_checkpoint_layout` names the layouts of the training
frameworks whose checkpoints `make_policy` loads:

- ``rsl_rl``: ``{"model_state_dict", "optimizer_state_dict", "iter", "infos"}``, written by rsl_rl
  <= 3 ``OnPolicyRunner.save`` (Isaac Lab 2.x, Genesis' locomotion examples). The weights are an
  ``ActorCritic``: ``actor.<i>.*``, ``critic.<i>.*``, ``std`` or ``log_std``, 3.x
  ``actor_obs_normalizer.*``; 2.x keeps its normalizer in ``obs_norm_state_dict``.
- ``rsl_rl_4``: ``{"actor_state_dict", "critic_state_dict", ...}``, written by rsl_rl >= 4
  (``PPO.save`` through ``OnPolicyRunner.save``). The actor is an ``MLPModel``: ``mlp.<i>.*``,
  ``obs_normalizer.*``, ``std``/``log_std`` (4.x) or ``distribution.std_param`` (5.x).
- ``lightning``: ``{"state_dict", "epoch", "global_step", ...}`` (Lightning
  ``Trainer.save_checkpoint``); keys carry the LightningModule's attribute names (``model.``).
- ``protomotions``: ``{"model", "epoch", "step_count", ...}`` (ProtoMotions
  ``BaseAgent.get_state_dict``, the ProtoMotions-Genesis fork's ``PPO.get_state_dict``).
"""

from __future__ import annotations

import zipfile
from collections.abc import Mapping
from typing import Any

import torch


def checkpoint_kind(path: str) -> str:
    """``"torchscript"``, ``"export"`` (a `torch.export` archive) or ``"torch.save"`` (anything else).

    TorchScript archives hold ``<name>/constants.pkl`` and ``<name>/code/``; `torch.export`
    archives ``<name>/archive_format``; `torch.save` zips ``<name>/data.pkl`` only. Files that are
    not zips (old `torch.save` pickles, junk) are ``"torch.save"``: `torch.load` judges them.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return "torch.save"
    tails = {name.split("/", 1)[1] if "/" in name else name for name in names}
    if "archive_format" in tails:
        return "export"
    if "constants.pkl" in tails or any(t.startswith("code/") for t in tails):
        return "torchscript"
    return "torch.save"


def training_checkpoint_layout(state: Any) -> str | None:
    """The layout name of the table above, or None for a plain state dict (or anything else)."""
    if not isinstance(state, Mapping):
        return None
    if isinstance(state.get("model_state_dict"), Mapping):
        return "rsl_rl"
    if isinstance(state.get("actor_state_dict"), Mapping):
        return "rsl_rl_4"
    if isinstance(state.get("state_dict"), Mapping):
        return "lightning"
    if isinstance(state.get("model"), Mapping) and ("epoch" in state or "step_count" in state):
        return "protomotions"
    return None


def weights_of(state: Any, layout: str | None) -> dict[str, Any]:
    """The state dict of the policy's network inside a checkpoint of ``layout``."""
    key = {"rsl_rl": "model_state_dict", "rsl_rl_4": "actor_state_dict", "lightning": "state_dict",
           "protomotions": "model"}.get(layout or "")
    return dict(state[key]) if key else dict(state)


def fit_state_dict(weights: Mapping[str, Any], module: torch.nn.Module, prefix: str | None = None) -> dict[str, Any]:
    """``weights`` with the keys ``module`` expects: as they are, with ``prefix`` stripped, or
    with the one key prefix (``"model."``, ``"actor."``...) whose stripping gives exactly the
    module's keys (keys without it are dropped: a Lightning module's other parts, a critic).

    Raises `ValueError` with one line naming a few missing and unexpected keys when nothing fits.
    """
    wanted = set(module.state_dict())
    if prefix is not None:
        stripped = {k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)}
        if set(stripped) == wanted:
            return stripped
        raise ValueError(_mismatch(stripped, wanted, type(module).__name__, f" after stripping prefix={prefix!r}"))
    if set(weights) == wanted:
        return dict(weights)
    for p in sorted(_key_prefixes(weights), key=len):
        stripped = {k[len(p):]: v for k, v in weights.items() if k.startswith(p)}
        if set(stripped) == wanted:
            return stripped
    best, best_prefix = dict(weights), ""
    for p in _key_prefixes(weights):  # name the keys of the closest candidate
        stripped = {k[len(p):]: v for k, v in weights.items() if k.startswith(p)}
        if len(set(stripped) & wanted) > len(set(best) & wanted):
            best, best_prefix = stripped, p
    where = f" (closest: keys under {best_prefix!r})" if best_prefix else ""
    raise ValueError(_mismatch(best, wanted, type(module).__name__, where) + "; pass prefix= or the matching module=")


def load_into(module: torch.nn.Module, weights: Mapping[str, Any], what: str) -> None:
    """`load_state_dict` (strict), with a shape mismatch said in one line naming the tensor."""
    own = module.state_dict()
    for key, value in weights.items():
        if isinstance(value, torch.Tensor) and key in own and tuple(value.shape) != tuple(own[key].shape):
            raise ValueError(f"{what}: {key} has shape {tuple(value.shape)} in the checkpoint, "
                             f"{tuple(own[key].shape)} in {type(module).__name__}")
    module.load_state_dict(dict(weights))


def _key_prefixes(weights: Mapping[str, Any]) -> set[str]:
    """Every dotted key prefix (``"a."``, ``"a.b."``) that ends before a key's last part."""
    out = set()
    for key in weights:
        parts = key.split(".")
        for i in range(1, len(parts)):
            out.add(".".join(parts[:i]) + ".")
    return out


def _mismatch(have: Mapping[str, Any], wanted: set[str], module_name: str, where: str) -> str:
    missing = sorted(wanted - set(have))
    unexpected = sorted(set(have) - wanted)
    return (f"the checkpoint's weights do not fit {module_name}{where}: missing {_few(missing)}; "
            f"unexpected {_few(unexpected)}")


def _few(keys: list[str], n: int = 3) -> str:
    if not keys:
        return "none"
    more = f" (+{len(keys) - n} more)" if len(keys) > n else ""
    return ", ".join(keys[:n]) + more

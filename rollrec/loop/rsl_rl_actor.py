"""rsl_rl's inference actor, rebuilt from a checkpoint's tensors (no rsl_rl needed).

rsl_rl's checkpoints hold weights, not architecture: `RslRlActor.from_checkpoint` reads the
layer sizes from the weights' shapes and follows the module code that wrote them:

- rsl_rl <= 3 ``ActorCritic`` (``modules/actor_critic.py``): ``self.actor`` is an ``nn.Sequential``
  (2.x) or ``MLP`` (3.x, ``networks/mlp.py``) of ``Linear`` layers at even indices with the
  activation between them; ``act_inference`` returns ``actor(actor_obs_normalizer(obs))``, and with
  ``state_dependent_std`` (3.x, no ``std``/``log_std`` parameter) the last layer outputs
  ``[..., 2, num_actions]`` of which the mean is ``[..., 0, :]``. rsl_rl 2.x's runner normalizes
  outside the policy (``get_inference_policy``: ``act_inference(obs_normalizer(x))``) and saves
  that normalizer as ``obs_norm_state_dict``.
- rsl_rl >= 4 ``MLPModel`` (``models/mlp_model.py``): ``obs_normalizer`` then ``mlp``; the
  deterministic output of a Gaussian (``std``/``log_std``, or 5.x ``distribution.std_param``) is
  the MLP's output.
- ``EmpiricalNormalization`` (``_mean``, ``_var``, ``_std``, ``count``; eps 1e-2): ``(x - _mean) /
  (_std + eps)``.

The activation is not in the checkpoint: rsl_rl's default is ``"elu"`` (the one Isaac Lab's
and Genesis' configs use); pass another name if the run's config (``params/agent.yaml``) says so.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

ACTIVATIONS = {
    "elu": nn.ELU, "selu": nn.SELU, "relu": nn.ReLU, "crelu": nn.CELU, "lrelu": nn.LeakyReLU, "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid, "softplus": nn.Softplus, "gelu": nn.GELU, "swish": nn.SiLU, "mish": nn.Mish,
    "identity": nn.Identity,
}  # rsl_rl/utils/utils.py resolve_nn_activation
NORMALIZER_EPS = 1e-2  # EmpiricalNormalization's default


class RslRlActor(nn.Module):
    """``obs -> mean action``: an optional empirical normalizer, then rsl_rl's actor MLP.

    ``obs`` is a tensor ``(N, obs_dim)`` or a mapping (rsl_rl 3's ``TensorDict``, what Isaac Lab's
    ``RslRlVecEnvWrapper`` returns) whose ``obs_groups`` entries are concatenated along the last
    dimension, as ``ActorCritic.get_actor_obs`` does. Returns ``(N, num_actions)`` on the
    module's device.
    """

    def __init__(self, mlp: nn.Sequential, normalizer: dict[str, torch.Tensor] | None, mean_slice: bool,
                 obs_groups: Sequence[str] = ("policy",)):
        super().__init__()
        self.mlp = mlp
        self.obs_groups = tuple(obs_groups)
        self.mean_slice = mean_slice
        if normalizer is not None:
            self.register_buffer("obs_mean", normalizer["_mean"].reshape(1, -1).clone())
            self.register_buffer("obs_std", normalizer["_std"].reshape(1, -1).clone())
        else:
            self.obs_mean = self.obs_std = None

    def forward(self, obs: Any) -> torch.Tensor:
        if isinstance(obs, torch.Tensor):
            x = obs
        elif hasattr(obs, "keys"):
            missing = [g for g in self.obs_groups if g not in obs.keys()]  # noqa: SIM118 (TensorDict has no `in`)
            if missing:
                raise KeyError(f"RslRlActor: obs has no group {missing[0]!r} (has {sorted(obs.keys())}); "
                               f"pass obs_groups= to make_policy")
            x = torch.cat([obs[g] for g in self.obs_groups], dim=-1)
        else:
            raise TypeError(f"RslRlActor: expected a tensor or a mapping of obs groups, got {type(obs).__name__}")
        if self.obs_mean is not None:
            x = (x - self.obs_mean) / (self.obs_std + NORMALIZER_EPS)
        out = self.mlp(x)
        return out[..., 0, :] if self.mean_slice else out

    @classmethod
    def from_checkpoint(cls, checkpoint: Mapping[str, Any], layout: str, *, activation: str = "elu",
                        obs_groups: Sequence[str] = ("policy",)) -> RslRlActor:
        """The actor of an rsl_rl checkpoint (``layout``: ``"rsl_rl"`` or ``"rsl_rl_4"``, see
        `rollrec.loop.checkpoints`). Raises `ValueError` (one line) for actors this does not
        rebuild: recurrent, convolutional, or a distribution whose mean is not the MLP's output."""
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation={activation!r}: rsl_rl knows {sorted(ACTIVATIONS)}")
        weights = checkpoint["model_state_dict" if layout == "rsl_rl" else "actor_state_dict"]
        mlp_key, norm_key = ("actor", "actor_obs_normalizer") if layout == "rsl_rl" else ("mlp", "obs_normalizer")
        if any(k.startswith(("memory_a.", "rnn.", "cnn", "cnns.")) for k in weights):
            raise ValueError(f"rsl_rl checkpoint: a recurrent or convolutional actor ({_first(weights)}...); "
                             f"pass module= (the actor network) to load it")
        linears = _linear_layers(weights, mlp_key)
        if not linears:
            raise ValueError(f"rsl_rl checkpoint: no {mlp_key}.<i>.weight in {_first(weights)}...")
        std = next((weights[k] for k in ("std", "log_std", "distribution.std_param", "distribution.log_std_param")
                    if k in weights), None)
        out_dim = linears[-1][1].shape[0]
        mean_slice = False
        if std is None:
            if layout != "rsl_rl" or out_dim % 2:
                raise ValueError("rsl_rl checkpoint: the actor has no std parameter, so its mean is not the MLP's "
                                 "output (state-dependent std or a Beta distribution); pass module=")
            mean_slice = True  # 3.x ActorCritic(state_dependent_std=True): MLP(..., [2, num_actions])
        elif std.shape[-1] != out_dim:
            raise ValueError(f"rsl_rl checkpoint: std has {std.shape[-1]} actions, the actor's last layer {out_dim}")
        mlp = nn.Sequential()
        for n, (index, w) in enumerate(linears):
            if index != 2 * n:
                raise ValueError(f"rsl_rl checkpoint: {mlp_key}.{index} is not where rsl_rl's MLP puts its "
                                 f"linear layer {n} (index {2 * n})")
            mlp.add_module(str(index), nn.Linear(w.shape[1], w.shape[0], dtype=w.dtype))
            if n < len(linears) - 1:
                mlp.add_module(str(index + 1), ACTIVATIONS[activation]())
        if mean_slice:
            mlp.add_module(str(linears[-1][0] + 1), nn.Unflatten(-1, (2, out_dim // 2)))
        mlp.load_state_dict({f"{i}.{p}": weights[f"{mlp_key}.{i}.{p}"] for i, _ in linears for p in ("weight", "bias")})
        normalizer = None
        if f"{norm_key}._mean" in weights:
            normalizer = {k: weights[f"{norm_key}.{k}"] for k in ("_mean", "_std")}
        elif isinstance(checkpoint.get("obs_norm_state_dict"), Mapping):  # rsl_rl 2.x runner's normalizer
            normalizer = {k: checkpoint["obs_norm_state_dict"][k] for k in ("_mean", "_std")}
        if normalizer is not None and normalizer["_mean"].numel() != linears[0][1].shape[1]:
            raise ValueError(f"rsl_rl checkpoint: the normalizer has {normalizer['_mean'].numel()} obs, "
                             f"the actor's first layer {linears[0][1].shape[1]}")
        return cls(mlp, normalizer, mean_slice, obs_groups)


def _linear_layers(weights: Mapping[str, Any], prefix: str) -> list[tuple[int, torch.Tensor]]:
    pattern = re.compile(rf"{re.escape(prefix)}\.(\d+)\.weight")
    found = sorted((int(m.group(1)), v) for k, v in weights.items() if (m := pattern.fullmatch(k)))
    return [(i, w) for i, w in found if w.ndim == 2]


def _first(weights: Mapping[str, Any], n: int = 3) -> str:
    return ", ".join(list(weights)[:n])

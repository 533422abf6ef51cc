"""The benchmark workload: the built-in env's field set, synthetic, pre-generated.

One step of ``N`` envs holds ``obs [N, 256] f32``, ``act [N, 32] f32``, ``rew [N] f32``,
``done [N] bool``, ``truncated [N] bool``, ``base_pos [N, 3] f32``, ``base_quat [N, 4] f32``
(unit, wxyz) and ``reward_terms``: 8 ``[N] f32`` tensors; 1218 bytes per env, about 5 MB per step
at N = 4096. A pool of a few distinct steps is generated once and reused, so generating data is
never timed. Values are random normals: they compress about as badly as real observations.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

OBS_DIM = 256
ACT_DIM = 32
REWARD_TERMS = (
    "forward_vel",
    "lateral_vel",
    "yaw_rate",
    "upright",
    "height",
    "energy",
    "action_rate",
    "alive",
)
POOL_STEPS = 4


def step_bytes_per_env() -> int:
    """Bytes one env adds per step (every field, as stored)."""
    return 4 * OBS_DIM + 4 * ACT_DIM + 4 + 1 + 1 + 12 + 16 + 4 * len(REWARD_TERMS)


@dataclass
class Workload:
    """``pool_steps`` distinct steps of ``num_envs`` envs on ``device``; `step(t)` cycles through them."""

    num_envs: int
    device: str | torch.device = "cpu"
    pool_steps: int = POOL_STEPS
    seed: int = 0
    pool: list[dict[str, Any]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        g = torch.Generator().manual_seed(self.seed)
        n = self.num_envs
        self.pool = []
        for _ in range(self.pool_steps):
            q = torch.randn(n, 4, generator=g)
            step = {
                "obs": torch.randn(n, OBS_DIM, generator=g),
                "act": torch.rand(n, ACT_DIM, generator=g) * 2 - 1,
                "rew": torch.randn(n, generator=g),
                "done": torch.rand(n, generator=g) < 0.002,
                "truncated": torch.rand(n, generator=g) < 0.001,
                "base_pos": torch.randn(n, 3, generator=g),
                "base_quat": q / q.norm(dim=-1, keepdim=True),
                "reward_terms": {k: torch.randn(n, generator=g) for k in REWARD_TERMS},
            }
            self.pool.append(_to(step, torch.device(self.device)))

    @property
    def step_bytes(self) -> int:
        """Bytes of one step of every env."""
        return self.num_envs * step_bytes_per_env()

    def step(self, t: int) -> dict[str, Any]:
        """The `Recorder.record` keyword arguments of step ``t``."""
        return self.pool[t % self.pool_steps]

    def tensors(self, t: int) -> list[torch.Tensor]:
        """Every tensor of step ``t``, reward terms included, in a fixed order."""
        s = self.step(t)
        return [v for k, v in s.items() if k != "reward_terms"] + list(s["reward_terms"].values())

    def flat_bytes(self, steps: int) -> np.ndarray:
        """A touched uint8 host array of ``steps`` steps' bytes (for `np.save`, the I/O limit)."""
        out = np.empty((steps, self.step_bytes), dtype=np.uint8)
        for p in range(min(steps, self.pool_steps)):
            row, off = out[p], 0
            for t in self.tensors(p):
                b = t.detach().cpu().contiguous().view(torch.uint8).reshape(-1).numpy()
                row[off : off + b.size] = b
                off += b.size
        for s in range(self.pool_steps, steps):
            out[s] = out[s % self.pool_steps]
        return out


def _to(step: dict[str, Any], device: torch.device) -> dict[str, Any]:
    if device.type == "cpu":
        return step
    return {
        k: ({kk: vv.to(device) for kk, vv in v.items()} if isinstance(v, dict) else v.to(device))
        for k, v in step.items()
    }

"""The built-in demo env: a batch of quadruped walkers, fully vectorised in torch.

Each env is a floating base with four legs (hip and knee joints, 8 actuated DoF) on gently
rolling terrain. The dynamics are a cheap reduced model, not a physics engine: joints track
position targets, stance legs that sweep backwards push the body forward, an unbalanced stance
tilts it, and random pushes topple some walkers. That is enough to give every env a different
trajectory, terminations (falls), truncations (time limit) and reward terms worth plotting.

All state lives on ``device``; `step` never synchronises with it (no ``.item()``, no masks),
so thousands of envs run on CPU or CUDA. Resets are automatic and per env. The same seed gives
the same rollout on the same device.
"""

from __future__ import annotations

import math

import torch

from rollrec.envs.rotations import quat_from_axis_angle, quat_from_euler, quat_mul, quat_rotate

LEG_NAMES = ("FL", "FR", "HL", "HR")
_HIP_OFFSETS = ((0.25, 0.14), (0.25, -0.14), (-0.25, 0.14), (-0.25, -0.14))
_THIGH, _SHIN = 0.22, 0.22
_NOMINAL_HEIGHT = 0.38
_SCAN = (20, 11)  # terrain height samples around the base: along x, along y


def terrain_height(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Ground height (metres) at world ``x, y``."""
    return 0.03 * torch.sin(0.6 * x) * torch.cos(0.45 * y) + 0.015 * torch.sin(1.7 * x + 0.8 * y)


class WalkerEnv:
    """``num_envs`` quadruped walkers on ``device``; ``dt`` seconds per step.

    Observations ``[N, 256]`` float32 (proprioception, then a 20x11 terrain height scan), actions
    ``[N, 8]`` in [-1, 1] (joint position targets, hips then knees per leg). `step` returns
    ``(obs, rew, terminated, truncated, info)`` with ``info["reward_terms"]`` a dict of ``[N]``
    tensors whose sum is ``rew``. Base pose (`base_pos` ``[N, 3]``, `base_quat` ``[N, 4]`` wxyz)
    and link poses (`link_poses`) describe the state the current observation describes.
    """

    name = "rollrec-walker"
    dt = 0.02
    act_dim = 8
    reward_term_names = (
        "forward_vel", "lateral_vel", "yaw_rate", "upright", "height", "energy", "action_rate", "alive",
    )
    link_names = ("base",) + tuple(f"{leg}_{part}" for leg in LEG_NAMES for part in ("thigh", "shin", "foot"))
    #: Index of each link's parent in `link_names` (-1 for the base): the skeleton's edges.
    link_parents = (-1,) + tuple(p for i in range(4) for p in (0, 1 + 3 * i, 2 + 3 * i))

    def __init__(self, num_envs: int, device: str | torch.device = "cpu", seed: int = 0, max_episode_steps: int = 500):
        if num_envs < 1:
            raise ValueError(f"num_envs must be at least 1, got {num_envs}")
        self.num_envs = int(num_envs)
        self.seed = int(seed)
        self.device = torch.device(device)
        self.max_episode_steps = int(max_episode_steps)
        self._gen = torch.Generator(device=self.device)
        self._gen.manual_seed(seed)
        n, dev = self.num_envs, self.device
        # Per-env constants: motor strength and push strength make envs differ.
        self.strength = 0.7 + 0.6 * self._rand(n)
        self.push_scale = 2.0 * self._rand(n) ** 3
        self.pos = torch.zeros(n, 3, device=dev)
        self.rpy = torch.zeros(n, 3, device=dev)
        self.lin_vel = torch.zeros(n, 3, device=dev)
        self.ang_vel = torch.zeros(n, 3, device=dev)
        self.q = torch.zeros(n, 8, device=dev)
        self.qd = torch.zeros(n, 8, device=dev)
        self.last_action = torch.zeros(n, 8, device=dev)
        self.episode_step = torch.zeros(n, dtype=torch.long, device=dev)
        self.phase = torch.zeros(n, device=dev)
        sx = torch.linspace(-0.6, 1.3, _SCAN[0], device=dev)
        sy = torch.linspace(-0.5, 0.5, _SCAN[1], device=dev)
        gx, gy = torch.meshgrid(sx, sy, indexing="ij")
        self._scan_xy = torch.stack((gx.reshape(-1), gy.reshape(-1), torch.zeros_like(gx.reshape(-1))), dim=-1)
        self.obs_dim = 36 + _SCAN[0] * _SCAN[1]
        self._hip_offsets = torch.tensor([[hx, hy, 0.0] for hx, hy in _HIP_OFFSETS], device=dev)  # [4, 3]
        self._thigh = torch.tensor([0.0, 0.0, -_THIGH], device=dev)
        self._shin = torch.tensor([0.0, 0.0, -_SHIN], device=dev)
        self._base_quat_of: torch.Tensor | None = None
        self.reset()

    def _rand(self, *shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=self._gen, device=self.device)

    # ---- state ------------------------------------------------------------------------------
    @property
    def base_pos(self) -> torch.Tensor:
        """``[N, 3]`` float32 base position, world frame."""
        return self.pos

    @property
    def base_quat(self) -> torch.Tensor:
        """``[N, 4]`` float32 base orientation, wxyz (computed once per ``rpy`` tensor: the env gives
        ``rpy`` a new tensor whenever it changes and never writes it in place)."""
        if self._base_quat_of is not self.rpy:
            self._base_quat = quat_from_euler(self.rpy[:, 0], self.rpy[:, 1], self.rpy[:, 2])
            self._base_quat_of = self.rpy
        return self._base_quat

    def link_poses(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Forward kinematics: ``(link_pos [N, L, 3], link_quat [N, L, 4] wxyz)`` for `link_names`."""
        base_q = self.base_quat
        n = self.num_envs
        y_axis = (0.0, 1.0, 0.0)
        # Every leg at once ([N, 4, ...]): hip and knee pitch about y, the foot at the shin's end.
        hip_q = quat_mul(base_q[:, None, :], quat_from_axis_angle(y_axis, self.q[:, 0::2]))
        knee_q = quat_mul(hip_q, quat_from_axis_angle(y_axis, self.q[:, 1::2]))
        hip = self.pos[:, None, :] + quat_rotate(base_q[:, None, :], self._hip_offsets)
        knee = hip + quat_rotate(hip_q, self._thigh)
        foot = knee + quat_rotate(knee_q, self._shin)
        positions = torch.stack((hip, knee, foot), dim=2).reshape(n, 12, 3)  # per leg: thigh, shin, foot
        quats = torch.stack((hip_q, knee_q, knee_q), dim=2).reshape(n, 12, 4)
        return torch.cat((self.pos[:, None, :], positions), dim=1), torch.cat((base_q[:, None, :], quats), dim=1)

    def get_obs(self) -> torch.Tensor:
        """``[N, obs_dim]`` float32 observation of the current state."""
        q = self.base_quat
        q_inv = q * torch.tensor([1.0, -1.0, -1.0, -1.0], device=self.device)
        gravity = quat_rotate(q_inv, torch.tensor([0.0, 0.0, -1.0], device=self.device).expand(self.num_envs, 3))
        # The scan grid turns with the base's yaw only: a 2-D rotation of its x, y (a quaternion
        # rotation of [N, 220] points cost most of the step at N=4096).
        cos_yaw, sin_yaw = torch.cos(self.rpy[:, 2:3]), torch.sin(self.rpy[:, 2:3])
        grid_x, grid_y = self._scan_xy[:, 0], self._scan_xy[:, 1]
        scan_x = self.pos[:, 0:1] + cos_yaw * grid_x - sin_yaw * grid_y
        scan_y = self.pos[:, 1:2] + sin_yaw * grid_x + cos_yaw * grid_y
        ground = terrain_height(self.pos[:, 0], self.pos[:, 1])
        scan = self.pos[:, 2:3] - terrain_height(scan_x, scan_y)
        return torch.cat(
            (
                quat_rotate(q_inv, self.lin_vel),
                self.ang_vel,
                gravity,
                self.q,
                0.1 * self.qd,
                self.last_action,
                torch.stack((torch.sin(self.phase), torch.cos(self.phase)), dim=-1),
                (self.pos[:, 2] - ground)[:, None],
                scan,
            ),
            dim=-1,
        )

    # ---- dynamics ---------------------------------------------------------------------------
    def reset(self) -> torch.Tensor:
        """Reset every env; returns the first observation ``[N, obs_dim]``."""
        self._reset_envs(torch.ones(self.num_envs, dtype=torch.bool, device=self.device))
        # Stagger episode clocks so truncations do not all land on the same step.
        self.episode_step = (self._rand(self.num_envs) * self.max_episode_steps * 0.8).long()
        return self.get_obs()

    def _reset_envs(self, mask: torch.Tensor) -> None:
        n = self.num_envs
        m1 = mask[:, None]
        start = torch.stack(
            ((self._rand(n) - 0.5) * 2.0, (torch.arange(n, device=self.device) % 64 - 31.5) * 1.0, torch.zeros(n, device=self.device)),
            dim=-1,
        )
        start[:, 2] = terrain_height(start[:, 0], start[:, 1]) + _NOMINAL_HEIGHT
        self.pos = torch.where(m1, start, self.pos)
        rpy0 = torch.stack((torch.zeros(n, device=self.device), torch.zeros(n, device=self.device), (self._rand(n) - 0.5) * 0.6), -1)
        self.rpy = torch.where(m1, rpy0, self.rpy)
        self.lin_vel = torch.where(m1, torch.zeros_like(self.lin_vel), self.lin_vel)
        self.ang_vel = torch.where(m1, torch.zeros_like(self.ang_vel), self.ang_vel)
        q0 = torch.tensor([0.3, -0.6] * 4, device=self.device).expand(n, 8)
        self.q = torch.where(m1, q0 + 0.05 * (self._rand(n, 8) - 0.5), self.q)
        self.qd = torch.where(m1, torch.zeros_like(self.qd), self.qd)
        self.last_action = torch.where(m1, torch.zeros_like(self.last_action), self.last_action)
        self.phase = torch.where(mask, self._rand(n) * 2 * math.pi, self.phase)
        self.episode_step = torch.where(mask, torch.zeros_like(self.episode_step), self.episode_step)

    def step(self, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, dict]:
        """Advance every env by `dt`. ``action [N, 8]`` is clipped to [-1, 1].

        Returns ``(obs, rew, terminated, truncated, info)``: ``obs [N, obs_dim]`` after
        auto-reset of the envs that ended, ``rew [N]`` float32, ``terminated``/``truncated`` ``[N]``
        bool, ``info["reward_terms"]`` a dict of ``[N]`` float32 tensors summing to ``rew``.
        """
        n, dt = self.num_envs, self.dt
        action = action.to(self.device, torch.float32).clamp(-1.0, 1.0)
        target = torch.tensor([0.3, -0.9] * 4, device=self.device) + action * torch.tensor([0.6, 0.6] * 4, device=self.device)
        qdd = self.strength[:, None] * 400.0 * (target - self.q) - 30.0 * self.qd
        self.qd = (self.qd + dt * qdd).clamp(-20.0, 20.0)
        self.q = self.q + dt * self.qd
        hip_vel = self.qd[:, 0::2]
        knee = self.q[:, 1::2]
        hip = self.q[:, 0::2]
        extent = _THIGH * torch.cos(hip) + _SHIN * torch.cos(hip + knee)  # hip-to-foot height per leg
        stance = torch.sigmoid(40.0 * (extent - extent.max(-1, keepdim=True).values + 0.03))  # longest legs touch
        # Stance legs sweeping backwards (negative hip velocity) push the body forward.
        push = -(stance * hip_vel).mean(-1) * _THIGH * 1.6
        side = (stance[:, 0::2] - stance[:, 1::2]).sum(-1)  # left minus right support
        fore = (stance[:, :2] - stance[:, 2:]).sum(-1)
        yaw_push = ((stance * hip_vel)[:, 1::2].sum(-1) - (stance * hip_vel)[:, 0::2].sum(-1)) * 0.15
        kick = self.push_scale[:, None] * (self._rand(n, 3) - 0.5) * torch.tensor([6.0, 6.0, 0.0], device=self.device)
        self.ang_vel = 0.9 * self.ang_vel + torch.stack(
            (0.8 * side + kick[:, 0] - 4.0 * self.rpy[:, 0], -0.8 * fore + kick[:, 1] - 4.0 * self.rpy[:, 1], yaw_push),
            dim=-1,
        ) * dt * 10.0
        self.rpy = self.rpy + dt * self.ang_vel
        yaw = self.rpy[:, 2]
        fwd = torch.stack((torch.cos(yaw), torch.sin(yaw)), -1)
        vel_xy = 0.8 * self.lin_vel[:, :2] + 0.2 * push[:, None] * fwd * 3.0
        ground = terrain_height(self.pos[:, 0], self.pos[:, 1])
        support = (stance * extent).sum(-1) / stance.sum(-1).clamp(min=1e-3)
        height = ground + support * torch.cos(self.rpy[:, 0]) * torch.cos(self.rpy[:, 1])
        vel_z = (height - self.pos[:, 2]) / dt
        self.lin_vel = torch.cat((vel_xy, vel_z[:, None]), dim=-1)
        self.pos = self.pos + dt * self.lin_vel
        self.phase = torch.remainder(self.phase + dt * 2 * math.pi * 1.6, 2 * math.pi)

        body_vel = quat_rotate(self.base_quat * torch.tensor([1.0, -1.0, -1.0, -1.0], device=self.device), self.lin_vel)
        tilt = self.rpy[:, 0] ** 2 + self.rpy[:, 1] ** 2
        rel_height = self.pos[:, 2] - terrain_height(self.pos[:, 0], self.pos[:, 1])
        terminated = (tilt > 0.5**2) | (rel_height < 0.2)
        terms = {
            "forward_vel": 1.5 * torch.clamp(body_vel[:, 0], max=1.0),
            "lateral_vel": -0.5 * body_vel[:, 1] ** 2,
            "yaw_rate": -0.1 * self.ang_vel[:, 2] ** 2,
            "upright": 0.5 * torch.exp(-tilt / 0.05),
            "height": 0.3 * torch.exp(-(((rel_height - _NOMINAL_HEIGHT) / 0.08) ** 2)),
            "energy": -0.002 * (self.qd * (target - self.q)).abs().sum(-1),
            "action_rate": -0.05 * ((action - self.last_action) ** 2).sum(-1),
            "alive": torch.where(terminated, torch.full_like(tilt, -5.0), torch.full_like(tilt, 0.2)),
        }
        rew = torch.stack(tuple(terms.values()), dim=0).sum(0)
        self.last_action = action
        self.episode_step = self.episode_step + 1
        truncated = (self.episode_step >= self.max_episode_steps) & ~terminated
        self._reset_envs(terminated | truncated)
        return self.get_obs(), rew, terminated, truncated, {"reward_terms": terms}


class GaitPolicy(torch.nn.Module):
    """A scripted trotting gait for `WalkerEnv`, as a TorchScript-able module: ``obs -> action``.

    Reads the gait phase from the observation and returns ``[N, 8]`` joint targets in [-1, 1],
    with a small feedback term on body tilt. ``amplitude`` and ``knee_lift`` are parameters, so
    the policy can be saved and loaded like a trained one.
    """

    def __init__(self, amplitude: float = 0.8, knee_lift: float = 0.9):
        super().__init__()
        self.amplitude = torch.nn.Parameter(torch.tensor(amplitude))
        self.knee_lift = torch.nn.Parameter(torch.tensor(knee_lift))
        self.register_buffer("leg_offset", torch.tensor([0.0, math.pi, math.pi, 0.0]))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        phase = torch.atan2(obs[:, 33], obs[:, 34])[:, None] + self.leg_offset  # obs[33:35] = (sin, cos) of phase
        gravity_y = obs[:, 7:8]
        hip = -self.amplitude * torch.sin(phase) - 0.5 * gravity_y  # stance (cos > 0) sweeps back
        knee = self.knee_lift * torch.clamp(torch.cos(phase), min=0.0) - 0.3
        return torch.stack((hip, knee), dim=-1).reshape(obs.shape[0], 8).clamp(-1.0, 1.0)

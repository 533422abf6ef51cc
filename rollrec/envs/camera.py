"""`WalkerCamera`: a small rendered camera for `WalkerEnv`, batched over envs, in torch.

A chase camera a little behind and beside each selected walker (it follows the base's position
and heading, not its roll and pitch, as a camera on a boom would), looking at the base. Every pixel
is a ray, cast in one batch for all selected envs against:

- the terrain (`rollrec.envs.walker.terrain_height`, a chequered height field: the ray's hit on the
  plane z = 0 refined by three fixed-point steps, exact to well under a millimetre for its small
  slopes), shaded by its normal, with a soft shadow under the robot and fog with distance;
- the robot: the base as an oriented box with a head sphere at its front, each leg as two
  capsules (hip-knee, knee-foot), at the link poses of `WalkerEnv.link_poses`;
- the sky (a gradient) where nothing is hit.

`render` returns RGB ``[M, H, W, 3]`` uint8 and depth ``[M, H, W]`` uint16 (millimetres along the
camera's axis; 0 where the ray hits nothing within ``max_depth``, as a depth sensor's range ends), on the env's device, without a host sync: what a
vision policy's camera gives, for `Recorder.record(images=...)`. Its cost grows with M x H x W
(about 10 ms for 16 envs at 64x64 on one CPU core), which is why it renders the envs asked for,
not all of them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from rollrec.envs.rotations import quat_rotate
from rollrec.envs.walker import WalkerEnv, terrain_height

_EYE = (-1.0, -0.75, 0.55)  # camera position in the base's heading frame, metres
_LOOK = (0.05, 0.0, -0.05)  # the point it looks at, same frame
_BOX = (0.30, 0.16, 0.06)  # base half extents
_HEAD = (0.33, 0.0, 0.05, 0.07)  # head sphere: centre in the base frame, radius
_LEG_RADIUS = 0.035
_LIGHT = (0.45, 0.3, 0.84)
_FOG = 14.0  # metres at which the fog has taken 63% of the colour
# Materials: rows of the palette.
_GROUND, _TILE, _BASE_ID, _HEAD_ID, _THIGH, _SHIN, _SKY_LOW, _SKY_HIGH = range(8)
_PALETTE = ((110, 130, 98), (150, 170, 130), (230, 122, 44), (238, 238, 232), (66, 116, 204), (44, 80, 160),
            (186, 206, 230), (92, 138, 204))
_FAR = 1e4


class WalkerCamera:
    """A chase camera of ``size`` ``(height, width)`` pixels and vertical field of view ``fov``
    degrees for the walkers ``envs`` of ``env`` (default: all), depth up to ``max_depth`` metres;
    see the module docstring. With ``Recorder(envs=...)``, give it the same envs: its images are
    theirs, in that order."""

    def __init__(self, env: WalkerEnv, envs: Sequence[int] | None = None, size: tuple[int, int] = (64, 64),
                 fov: float = 60.0, max_depth: float = 8.0):
        height, width = (int(s) for s in size)
        if height < 2 or width < 2:
            raise ValueError(f"camera size must be at least 2x2 pixels, got {height}x{width}")
        self.env = env
        self.device = env.device
        ids = range(env.num_envs) if envs is None else list(envs)
        self.envs = torch.tensor(list(ids), dtype=torch.long, device=self.device)
        self.size = (height, width)
        self.max_depth = float(max_depth)
        tan = math.tan(math.radians(fov) / 2)
        ys = (1 - 2 * (torch.arange(height, device=self.device) + 0.5) / height) * tan
        xs = (2 * (torch.arange(width, device=self.device) + 0.5) / width - 1) * tan * width / height
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        self._grid = torch.stack((gx.reshape(-1), gy.reshape(-1)), -1)  # [P, 2] image-plane offsets

    def images(self) -> dict[str, torch.Tensor]:
        """``{"chase": rgb, "depth": depth}`` (see `render`): what ``Recorder.record(images=...)`` takes."""
        rgb, depth = self.render()
        return {"chase": rgb, "depth": depth}

    def render(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(rgb [M, H, W, 3] uint8, depth [M, H, W] uint16 mm)`` of the selected envs now."""
        link_pos, link_quat = self.env.link_poses()
        pos, quat = link_pos[self.envs], link_quat[self.envs]  # [M, L, 3], [M, L, 4]
        base, base_q = pos[:, 0], quat[:, 0]
        origin, dirs, forward = self._rays(base, self.env.rpy[self.envs, 2])
        hit = _Hits(origin, dirs)
        hit.ground()
        hit.box(base, base_q)
        hit.sphere(base + quat_rotate(base_q, _vec(_HEAD[:3], base)), _HEAD[3], _HEAD_ID)
        for leg in range(4):
            hip, knee, foot = pos[:, 1 + 3 * leg], pos[:, 2 + 3 * leg], pos[:, 3 + 3 * leg]
            hit.capsule(hip, knee, _THIGH)
            hit.capsule(knee, foot, _SHIN)
        rgb = hit.shade(base)
        along = (dirs * forward[:, None]).sum(-1)  # depth is measured along the camera's axis
        depth_m = hit.t * along
        depth_m = torch.where((hit.t < _FAR) & (depth_m <= self.max_depth), depth_m, torch.zeros_like(depth_m))
        depth = (depth_m * 1000).round().clamp(0, 65535).to(torch.int32)
        m, (h, w) = len(self.envs), self.size
        return rgb.reshape(m, h, w, 3), _uint16(depth).reshape(m, h, w)

    def _rays(self, base: torch.Tensor, yaw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(origins [M, 3], unit directions [M, P, 3], camera axis [M, 3])``."""
        c, s = torch.cos(yaw), torch.sin(yaw)

        def heading(v: tuple[float, float, float]) -> torch.Tensor:
            x, y, z = v
            return torch.stack((c * x - s * y, s * x + c * y, torch.full_like(c, z)), -1)

        eye = base + heading(_EYE)
        forward = _unit(base + heading(_LOOK) - eye)
        up_world = torch.tensor([0.0, 0.0, 1.0], device=self.device).expand_as(forward)
        right = _unit(torch.linalg.cross(forward, up_world))
        up = torch.linalg.cross(right, forward)
        gx, gy = self._grid[:, 0], self._grid[:, 1]
        dirs = _unit(forward[:, None] + gx[None, :, None] * right[:, None] + gy[None, :, None] * up[:, None])
        return eye, dirs, forward


class _Hits:
    """The nearest hit so far of every ray ``[M, P]``: its distance, material and normal.

    Vectors are kept as their three components, each ``[M, P]`` (or ``[M, 1]`` for a per-env
    point): elementwise ops on them cost a third of reductions over a last axis of 3.
    """

    def __init__(self, origin: torch.Tensor, dirs: torch.Tensor):
        self.o = tuple(origin[:, None, i] for i in range(3))  # [M, 1] each
        self.d = tuple(dirs[..., i] for i in range(3))  # [M, P] each
        like = self.d[0]
        self.t = torch.full_like(like, _FAR)
        self.material = torch.zeros(like.shape, dtype=torch.long, device=like.device)
        self.normal = (torch.zeros_like(like), torch.zeros_like(like), torch.ones_like(like))
        self.tile = torch.zeros(like.shape, dtype=torch.bool, device=like.device)

    def _keep(self, t: torch.Tensor, material: int, normal: tuple[torch.Tensor, ...]) -> torch.Tensor:
        nearer = (t > 1e-4) & (t < self.t)
        self.t = torch.where(nearer, t, self.t)
        self.material = torch.where(nearer, torch.full_like(self.material, material), self.material)
        self.normal = tuple(torch.where(nearer, n, m) for n, m in zip(normal, self.normal))
        return nearer

    def point(self, t: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(o + t * d for o, d in zip(self.o, self.d))

    def ground(self) -> None:
        dz = self.d[2]
        down = dz < -1e-3
        safe = torch.where(down, dz, torch.full_like(dz, -1.0))
        oz = self.o[2]
        t = -oz / safe
        for _ in range(3):  # the plane's hit, moved to the height field's
            x, y, _z = self.point(t)
            t = (terrain_height(x, y) - oz) / safe
        t = torch.where(down & (t > 0), t, torch.full_like(t, _FAR))
        x, y, _z = self.point(t)
        # The height field's gradient, analytic (see terrain_height).
        wave = 0.015 * torch.cos(1.7 * x + 0.8 * y)
        gx = 0.018 * torch.cos(0.6 * x) * torch.cos(0.45 * y) + 1.7 * wave
        gy = -0.0135 * torch.sin(0.6 * x) * torch.sin(0.45 * y) + 0.8 * wave
        inv = torch.rsqrt(gx * gx + gy * gy + 1)
        nearer = self._keep(t, _GROUND, (-gx * inv, -gy * inv, inv))
        checker = (torch.floor(x * 2) + torch.floor(y * 2)).remainder(2) == 0
        self.tile = nearer & checker

    def box(self, center: torch.Tensor, quat: torch.Tensor) -> None:
        """The base: a box of half extents `_BOX` at ``center`` ``[M, 3]``, oriented by ``quat`` (wxyz)."""
        axes = [quat_rotate(quat, _vec(e, center)) for e in ((1.0, 0, 0), (0, 1.0, 0), (0, 0, 1.0))]  # [M, 3] each
        rel = [o - c[:, None] for o, c in zip(self.o, center.unbind(-1))]
        t_near = torch.full_like(self.t, -_FAR)
        t_far = torch.full_like(self.t, _FAR)
        normal_axis = torch.zeros_like(self.material)
        for i, (axis, half) in enumerate(zip(axes, _BOX)):
            a = [axis[:, None, k] for k in range(3)]
            o = rel[0] * a[0] + rel[1] * a[1] + rel[2] * a[2]  # [M, 1]
            d = self.d[0] * a[0] + self.d[1] * a[1] + self.d[2] * a[2]
            d = torch.where(d.abs() < 1e-9, torch.full_like(d, 1e-9), d)
            t1, t2 = (-half - o) / d, (half - o) / d
            near = torch.minimum(t1, t2)
            entering = near > t_near
            normal_axis = torch.where(entering, torch.full_like(normal_axis, 2 * i) + (d > 0), normal_axis)
            t_near = torch.maximum(t_near, near)
            t_far = torch.minimum(t_far, torch.maximum(t1, t2))
        t = torch.where((t_far >= t_near) & (t_far > 0), t_near, torch.full_like(t_near, _FAR))
        signed = torch.stack([a for axis in axes for a in (axis, -axis)], 1)  # [M, 6, 3]: +x, -x, +y, ...
        n = torch.gather(signed, 1, normal_axis.clamp(max=5)[..., None].expand(*normal_axis.shape, 3))
        self._keep(t, _BASE_ID, tuple(n[..., k] for k in range(3)))

    def sphere(self, center: torch.Tensor, radius: float, material: int) -> None:
        oc = [o - c[:, None] for o, c in zip(self.o, center.unbind(-1))]
        b = oc[0] * self.d[0] + oc[1] * self.d[1] + oc[2] * self.d[2]
        c = oc[0] * oc[0] + oc[1] * oc[1] + oc[2] * oc[2] - radius**2
        h = b * b - c
        t = torch.where(h >= 0, -b - torch.sqrt(h.clamp(min=0)), torch.full_like(h, _FAR))
        p = self.point(t)
        self._keep(t, material, tuple((pk - ck[:, None]) / radius for pk, ck in zip(p, center.unbind(-1))))

    def capsule(self, a: torch.Tensor, b: torch.Tensor, material: int) -> None:
        """A capsule from ``a`` to ``b`` ``[M, 3]`` (Inigo Quilez's ray-capsule intersection)."""
        r = _LEG_RADIUS
        ba = [x[:, None] for x in (b - a).unbind(-1)]  # [M, 1]
        oa = [o - x[:, None] for o, x in zip(self.o, a.unbind(-1))]  # [M, 1]
        d = self.d
        baba = ba[0] * ba[0] + ba[1] * ba[1] + ba[2] * ba[2]
        baoa = ba[0] * oa[0] + ba[1] * oa[1] + ba[2] * oa[2]
        oaoa = oa[0] * oa[0] + oa[1] * oa[1] + oa[2] * oa[2]
        bard = ba[0] * d[0] + ba[1] * d[1] + ba[2] * d[2]  # [M, P]
        rdoa = oa[0] * d[0] + oa[1] * d[1] + oa[2] * d[2]
        qa = baba - bard * bard
        qb = baba * rdoa - baoa * bard
        qc = baba * oaoa - baoa * baoa - r * r * baba
        h = qb * qb - qa * qc
        t = (-qb - torch.sqrt(h.clamp(min=0))) / qa.clamp(min=1e-12)
        y = baoa + t * bard
        # Outside the side: the sphere at the nearer end (a where y <= 0, else b).
        at_a = y <= 0
        oc = [torch.where(at_a, x, x - bx) for x, bx in zip(oa, ba)]
        cb = oc[0] * d[0] + oc[1] * d[1] + oc[2] * d[2]
        cc = oc[0] * oc[0] + oc[1] * oc[1] + oc[2] * oc[2] - r * r
        ch = cb * cb - cc
        t_cap = -cb - torch.sqrt(ch.clamp(min=0))
        side = (y > 0) & (y < baba)
        t = torch.where(h < 0, _FAR, torch.where(side, t, torch.where(ch >= 0, t_cap, _FAR)))
        # Normal: from the closest point of the axis to the hit.
        along = ((baoa + t * bard) / baba.clamp(min=1e-12)).clamp(0, 1)
        normal = tuple((ox + t * dx - along * bx) / r for ox, dx, bx in zip(oa, d, ba))
        self._keep(t, material, normal)

    def shade(self, base: torch.Tensor) -> torch.Tensor:
        """``[M, P, 3]`` uint8: lit colours, shadow and fog, sky where nothing was hit."""
        lx, ly, lz = (v / math.sqrt(sum(c * c for c in _LIGHT)) for v in _LIGHT)
        nx, ny, nz = self.normal
        lambert = 0.35 + 0.65 * (nx * lx + ny * ly + nz * lz).clamp(min=0)
        x, y, _z = self.point(self.t.clamp(max=1e3))
        near_base = (x - base[:, None, 0]) ** 2 + (y - base[:, None, 1]) ** 2
        on_ground = self.material == _GROUND
        shade = lambert * torch.where(on_ground, 1 - 0.45 * torch.exp(-near_base / 0.06), torch.ones_like(lambert))
        palette = torch.tensor(_PALETTE, dtype=shade.dtype, device=shade.device)
        material = torch.where(self.tile & on_ground, torch.full_like(self.material, _TILE), self.material)
        color = palette[material] * shade[..., None]  # [M, P, 3]
        up = self.d[2].clamp(0, 1)[..., None]
        sky = palette[_SKY_LOW] * (1 - up) + palette[_SKY_HIGH] * up
        fog = torch.exp(-self.t / _FOG)[..., None]
        out = torch.where((self.t < _FAR)[..., None], color * fog + sky * (1 - fog), sky)
        return out.round().clamp(0, 255).to(torch.uint8)


def _unit(v: torch.Tensor) -> torch.Tensor:
    return v / v.norm(dim=-1, keepdim=True).clamp(min=1e-12)


def _vec(v: Sequence[float], like: torch.Tensor) -> torch.Tensor:
    return torch.tensor(list(v), dtype=like.dtype, device=like.device).expand_as(like)


def _uint16(values: torch.Tensor) -> torch.Tensor:
    """int32 values in 0..65535 as uint16 (torch.uint16 where this torch has it, else int32)."""
    return values.to(torch.uint16) if hasattr(torch, "uint16") else values


__all__ = ["WalkerCamera"]

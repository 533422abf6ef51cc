"""Forward kinematics of a URDF, batched in torch: link poses from a base pose and joint positions.

Follows the URDF specification (ROS ``urdf/XML``, ``<joint>``): a child link's frame is its
parent's frame times the joint's ``<origin xyz rpy>`` times the joint's motion: a rotation by
``q`` about ``<axis xyz>`` (``revolute``, ``continuous``), a translation by ``q`` along it
(``prismatic``), nothing (``fixed``). Used where a simulator's own link poses lag its joint
coordinates (Genesis after ``set_qpos(..., skip_forward=True)``) and rollrec may not run the
simulator's kinematics on its state: the poses are computed here, from the coordinates only.
"""

from __future__ import annotations

import functools
import os
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from rollrec.model.urdf import _floats, _origin

MOVING = ("revolute", "continuous", "prismatic")


#: Hamilton product ``a ⊗ b``: component ``i`` is ``sum_j a[_MUL_INDEX[i, j]] * _MUL_SIGN[i, j] * b[j]``.
_MUL_INDEX = ((0, 1, 2, 3), (1, 0, 3, 2), (2, 3, 0, 1), (3, 2, 1, 0))
_MUL_SIGN = ((1, -1, -1, -1), (1, 1, -1, 1), (1, 1, 1, -1), (1, -1, 1, 1))


@functools.lru_cache(maxsize=16)
def _mul_tables(device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    return (torch.as_tensor(_MUL_INDEX, device=device).flatten(), torch.as_tensor(_MUL_SIGN, dtype=dtype, device=device))


def quat_mul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Hamilton product of wxyz quaternions ``[..., 4]`` (broadcasting).

    Four elementwise operations (a gather, two products, a sum), not one per term: on a CPU these
    small products cost per operation, and a matmul there would wake a thread pool."""
    index, sign = _mul_tables(a.device, a.dtype)
    return (a.index_select(-1, index).unflatten(-1, (4, 4)) * (sign * b.unsqueeze(-2))).sum(-1)


def quat_rotate(q: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``v [..., 3]`` rotated by unit wxyz ``q [..., 4]`` (broadcasting):
    ``v + 2 (w u + xyz × u)`` with ``u = xyz × v``."""
    w, xyz = q[..., :1], q[..., 1:]
    xyz, v = torch.broadcast_tensors(xyz, v)
    u = torch.linalg.cross(xyz, v)
    return v + 2.0 * (w * u + torch.linalg.cross(xyz, u))


def _rotate_np(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    w, xyz = q[..., :1], q[..., 1:]
    t = 2.0 * np.cross(xyz, v)
    return v + w * t + np.cross(xyz, t)


class UrdfKinematics:
    """Link poses of a URDF's links ``link_names`` (world frame, wxyz) from the root link's pose and
    the moving joints' positions ``joint_names`` (in that column order).

    Call with ``base_pos [N, 3]``, ``base_quat [N, 4]`` (the root link's frame, unit) and ``q [N,
    J]``; returns ``link_pos [N, L, 3]`` and ``link_quat [N, L, 4]`` on ``q``'s device and dtype.
    Raises ValueError for a link the URDF lacks, a moving joint missing from ``joint_names``, or a
    link not under the root.

    The tree is walked level by level (all links at one depth at once), with every joint's fixed
    transform and motion batched over joints: a call costs a few dozen tensor operations whatever
    the number of links (a Go2's 13 links: 4 levels), not a dozen per link.
    """

    def __init__(self, path: str | os.PathLike, link_names: Sequence[str], joint_names: Sequence[str]):
        path = Path(path)
        root = ET.parse(path).getroot()
        joints = {}  # child -> (name, parent, type, pos, quat, axis)
        for j in root.findall("joint"):
            parent, child = j.find("parent"), j.find("child")
            if parent is None or child is None:
                raise ValueError(f"{path}: joint {j.get('name')!r} needs <parent> and <child>")
            pos, quat = _origin(j.find("origin"), f"joint {j.get('name')!r}")
            axis_el = j.find("axis")
            axis = _floats(axis_el.get("xyz") if axis_el is not None else None, 3, (1, 0, 0), f"joint {j.get('name')!r} axis")
            joints[child.get("link")] = (j.get("name"), parent.get("link"), j.get("type", "fixed"), pos, quat,
                                         axis / max(np.linalg.norm(axis), 1e-12))
        links = [el.get("name") for el in root.findall("link")]
        roots = [n for n in links if n not in joints]
        missing = [n for n in link_names if n not in links]
        if missing:
            raise ValueError(f"{path}: no link {missing[:3]} (links: {links[:6]}...)")
        column = {name: i for i, name in enumerate(joint_names)}
        self.link_names = list(link_names)
        depth: dict[str, int] = {}  # every link the wanted ones hang from, with its depth below the root

        def visit(link: str, seen: int = 0) -> int:
            if link in depth:
                return depth[link]
            if seen > len(joints) + 1:
                raise ValueError(f"{path}: the joints form a cycle above link {link!r}")
            depth[link] = visit(joints[link][1], seen + 1) + 1 if link in joints else 0
            return depth[link]

        for name in link_names:
            visit(name)
        tops = [n for n, d in depth.items() if d == 0]
        if len(roots) != 1 or tops != roots:
            raise ValueError(f"{path}: expected one root link, found {roots}")
        self.root = roots[0]
        order = sorted(depth, key=lambda n: depth[n])  # slot order: level by level, the root first
        slot = {name: i for i, name in enumerate(order)}
        moving_rows = []
        for link in order[1:]:
            name, parent, kind, pos, quat, axis = joints[link]
            if kind in MOVING and name not in column:
                raise ValueError(f"{path}: moving joint {name!r} has no column in joint_names {list(joint_names)[:6]}...")
            if kind not in (*MOVING, "fixed"):
                raise ValueError(f"{path}: joint {name!r} of type {kind!r} is not supported")
            moving_rows.append((slot[parent], kind, pos, quat, axis, column.get(name, 0)))
        # per joint (row i is the joint above slot i + 1)
        self._parent = np.array([r[0] for r in moving_rows], dtype=np.int64)
        self._column = np.array([r[5] for r in moving_rows], dtype=np.int64)
        self._half_angle = np.array([0.5 if r[1] in ("revolute", "continuous") else 0.0 for r in moving_rows])
        self._slide = np.array([1.0 if r[1] == "prismatic" else 0.0 for r in moving_rows])
        self._offset = np.array([r[2] for r in moving_rows], dtype=np.float64).reshape(-1, 3)
        origin_quat = np.array([r[3] for r in moving_rows], dtype=np.float64).reshape(-1, 4)
        self._axis = np.array([r[4] for r in moving_rows], dtype=np.float64).reshape(-1, 3)
        self._origin_quat = origin_quat  # a joint's frame: origin_quat ⊗ motion
        self._slide_axis = _rotate_np(origin_quat, self._axis)  # a prismatic joint moves along its rotated axis
        levels = [depth[n] for n in order]
        self._levels = [(levels.index(d), len(levels) - levels[::-1].index(d)) for d in range(1, max(levels) + 1)]
        self.slots = [slot[n] for n in link_names]
        self._consts: dict[tuple[torch.device, torch.dtype], dict[str, torch.Tensor]] = {}

    def _constants(self, device: torch.device, dtype: torch.dtype) -> dict[str, torch.Tensor]:
        key = (device, dtype)
        if key not in self._consts:
            def t(a: np.ndarray, kind: torch.dtype = dtype) -> torch.Tensor:
                return torch.as_tensor(a, dtype=kind, device=device)

            self._consts[key] = {
                "column": t(self._column, torch.long), "half_angle": t(self._half_angle), "slide": t(self._slide),
                "axis": t(self._axis), "offset": t(self._offset), "origin_quat": t(self._origin_quat),
                "slide_axis": t(self._slide_axis), "slots": t(np.asarray(self.slots), torch.long),
                "parents": [t(self._parent[a - 1:b - 1], torch.long) for a, b in self._levels],
            }
        return self._consts[key]

    def __call__(self, base_pos: torch.Tensor, base_quat: torch.Tensor, q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        c = self._constants(q.device, q.dtype)
        n = q.shape[0]
        joint_q = q.index_select(1, c["column"]) if q.shape[1] else q.new_zeros(n, len(self._column))
        half = joint_q * c["half_angle"]  # [N, M]: 0 for fixed and prismatic joints
        motion = torch.cat([torch.cos(half).unsqueeze(-1), torch.sin(half).unsqueeze(-1) * c["axis"]], -1)
        local_quat = quat_mul(c["origin_quat"], motion)  # [N, M, 4]
        local_pos = c["offset"] + c["slide_axis"] * (joint_q * c["slide"]).unsqueeze(-1)  # [N, M, 3]
        frames = q.new_empty(n, len(self._column) + 1, 7)  # per slot: position, then wxyz
        frames[:, 0, :3], frames[:, 0, 3:] = base_pos, base_quat
        for (a, b), parents in zip(self._levels, c["parents"]):
            parent = frames.index_select(1, parents)
            parent_rot = parent[..., 3:]
            frames[:, a:b, :3] = parent[..., :3] + quat_rotate(parent_rot, local_pos[:, a - 1:b - 1])
            frames[:, a:b, 3:] = quat_mul(parent_rot, local_quat[:, a - 1:b - 1])
        out = frames.index_select(1, c["slots"])
        return out[..., :3], out[..., 3:]

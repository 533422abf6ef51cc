"""Forward kinematics of a URDF, batched in torch: link poses from a base pose and joint positions.

Follows the URDF specification (ROS ``urdf/XML``, ``<joint>``): a child link's frame is its
parent's frame times the joint's ``<origin xyz rpy>`` times the joint's motion: a rotation by
``q`` about ``<axis xyz>`` (``revolute``, ``continuous``), a translation by ``q`` along it
(``prismatic``), nothing (``fixed``). Used where a simulator's own link poses lag its joint
coordinates (Genesis after ``set_qpos(..., skip_forward=True)``) and rollrec may not run the
simulator's kinematics on its state: the poses are computed here, from the coordinates only.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from rollrec.model.urdf import _floats, _origin

MOVING = ("revolute", "continuous", "prismatic")


def quat_mul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Hamilton product of wxyz quaternions ``[..., 4]``."""
    w1, x1, y1, z1 = a.unbind(-1)
    w2, x2, y2, z2 = b.unbind(-1)
    return torch.stack([w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2, w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
                        w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2, w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2], -1)


def quat_rotate(q: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``v [..., 3]`` rotated by wxyz ``q [..., 4]``."""
    w, xyz = q[..., :1], q[..., 1:]
    t = 2.0 * torch.cross(xyz, v, dim=-1)
    return v + w * t + torch.cross(xyz, t, dim=-1)


class UrdfKinematics:
    """Link poses of a URDF's links ``link_names`` (world frame, wxyz) from the root link's pose and
    the moving joints' positions ``joint_names`` (in that column order).

    Call with ``base_pos [N, 3]``, ``base_quat [N, 4]`` (the root link's frame) and ``q [N, J]``;
    returns ``link_pos [N, L, 3]`` and ``link_quat [N, L, 4]`` on ``q``'s device and dtype. Raises
    ValueError for a link the URDF lacks, a moving joint missing from ``joint_names``, or a link
    not under the root.
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
        # every link the wanted ones hang from, parents first
        order: list[str] = []

        def visit(link: str, depth: int = 0) -> None:
            if link in order:
                return
            if depth > len(joints) + 1:
                raise ValueError(f"{path}: the joints form a cycle above link {link!r}")
            if link in joints:
                visit(joints[link][1], depth + 1)
            order.append(link)

        for name in link_names:
            visit(name)
        if len(roots) != 1 or order[0] != roots[0]:
            raise ValueError(f"{path}: expected one root link, found {roots}")
        self.root = roots[0]
        self.steps = []  # (child slot, parent slot, type, pos, quat, axis, q column)
        for slot, link in enumerate(order[1:], start=1):
            name, parent, kind, pos, quat, axis = joints[link]
            if kind in MOVING and name not in column:
                raise ValueError(f"{path}: moving joint {name!r} has no column in joint_names {list(joint_names)[:6]}...")
            if kind not in (*MOVING, "fixed"):
                raise ValueError(f"{path}: joint {name!r} of type {kind!r} is not supported")
            self.steps.append((slot, order.index(parent), kind, pos, quat, axis, column.get(name)))
        self.slots = [order.index(n) for n in link_names]
        self._consts: dict[tuple[torch.device, torch.dtype], list] = {}

    def _constants(self, device: torch.device, dtype: torch.dtype) -> list:
        key = (device, dtype)
        if key not in self._consts:
            self._consts[key] = [(c, p, k, torch.as_tensor(pos, dtype=dtype, device=device),
                                  torch.as_tensor(quat, dtype=dtype, device=device),
                                  torch.as_tensor(axis, dtype=dtype, device=device), col)
                                 for c, p, k, pos, quat, axis, col in self.steps]
        return self._consts[key]

    def __call__(self, base_pos: torch.Tensor, base_quat: torch.Tensor, q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pos = [base_pos] + [None] * len(self.steps)
        rot = [base_quat] + [None] * len(self.steps)
        for child, parent, kind, jpos, jquat, axis, col in self._constants(q.device, q.dtype):
            p = pos[parent] + quat_rotate(rot[parent], jpos.expand_as(pos[parent]))
            r = quat_mul(rot[parent], jquat.expand_as(rot[parent]))
            if kind == "prismatic":
                p = p + quat_rotate(r, axis * q[:, col:col + 1])
            elif kind != "fixed":
                half = 0.5 * q[:, col:col + 1]
                r = quat_mul(r, torch.cat([torch.cos(half), torch.sin(half) * axis], -1))
            pos[child], rot[child] = p, r
        return (torch.stack([pos[s] for s in self.slots], 1), torch.stack([rot[s] for s in self.slots], 1))

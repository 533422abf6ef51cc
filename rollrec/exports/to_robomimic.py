"""Export a rollout as a robomimic dataset: one HDF5 file written with h5py.

The layout is robomimic's (``docs/datasets/overview.md``; read by
``robomimic/utils/dataset.py`` ``SequenceDataset``), one demo per exported (env, episode)::

    data                      attrs: total (samples), env_args (JSON: env_name, type, env_kwargs)
    data/demo_<i>             attrs: num_samples, and rollrec's env, start, stop, end, return
    data/demo_<i>/obs/<key>   [n, ...]: obs split by meta["obs_layout"] (else obs/flat), base_pos,
                              base_quat, link_pos, link_quat, the extras, <camera>_image [n, H, W, 3]
    data/demo_<i>/next_obs/<key>   obs of the next step; the last step repeats its own obs (the
                              convention of robomimic's scripts/conversion/convert_d4rl.py: the
                              next obs after an episode's end was never observed)
    data/demo_<i>/actions     [n, A]    (act)
    data/demo_<i>/rewards     [n]       (rew)
    data/demo_<i>/dones       [n] uint8 (done: 1 on the last step of a terminated or truncated episode)
    data/demo_<i>/truncated, reward_terms [n, K] (attrs: names)
    mask/<filter>             demo names (bytes) of the terminated, truncated, unfinished and
                              captured episodes: robomimic's filter keys (filter_by_attribute=)

``env_args["type"]`` is robomimic's ``EnvType.GYM_TYPE`` (2: ``robomimic/envs/env_base.py``), the
closest of its env types for a simulator it does not wrap; ``env_kwargs`` holds the rollout's
``meta`` (dt, env name, format) for people, not for robomimic to rebuild the env.
Values keep the rollout's dtypes (robomimic casts to float32 when it loads).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rollrec.exports.cameras import Camera, read_frames
from rollrec.exports.deps import require
from rollrec.exports.fields import Field, obs_parts
from rollrec.exports.reading import BlockReader
from rollrec.exports.selection import Episode, Selection
from rollrec.io.protocol import ReadableRollout

GYM_TYPE = 2  # robomimic.envs.env_base.EnvType.GYM_TYPE
#: rollout member -> the demo's dataset (members not here are observations)
DATASET_OF = {"act": "actions", "rew": "rewards", "done": "dones", "truncated": "truncated", "rew_terms": "reward_terms"}
FILTERS = ("terminated", "truncated", "unfinished", "captured")


def obs_keys(r: ReadableRollout, fields: Sequence[Field], cams: Sequence[Camera]) -> dict[str, tuple[str, Any]]:
    """``{obs key: (member, how)}``: ``how`` is ``(start, stop, shape)`` of an obs part, None for a
    whole member, or the `Camera`; ValueError for a key robomimic cannot tell apart."""
    out: dict[str, tuple[str, Any]] = {}
    for f in fields:
        if f.key == "obs":
            for name, a, b, shape in obs_parts(r, f.width):
                out[name] = ("obs", (a, b, shape))
        elif f.key not in DATASET_OF:
            out[f.key] = (f.key, None)
    for cam in cams:
        name = cam.name if cam.name.endswith(("image", "depth")) else f"{cam.name}_{'image' if cam.is_rgb else 'depth'}"
        out[name] = (cam.name, cam)
    for name in out:
        if "/" in name or not name:
            raise ValueError(f"obs key {name!r}: an HDF5 dataset name cannot be empty or contain '/'")
    return out


def write_robomimic(r: ReadableRollout, path: Path, selection: Selection, fields: Sequence[Field],
                    cams: Sequence[Camera], *, advance: Callable[[int], None] = lambda n: None) -> None:
    """Write the dataset to ``path`` (a new file)."""
    h5py = require("h5py", "robomimic")
    if "act" not in r:
        raise ValueError(f"{r.path.name} holds no actions ('act'): a robomimic demo needs them")
    keys = obs_keys(r, fields, cams)
    reader = BlockReader(r, [f.key for f in fields], selection.envs)
    by_key = {f.key: f for f in fields}
    masks: dict[str, list[str]] = {name: [] for name in FILTERS}
    total = 0
    with h5py.File(path, "w") as f:
        data = f.create_group("data")
        for i, ep in enumerate(selection.episodes):
            name = f"demo_{i}"
            _write_demo(data.create_group(name), r, reader, ep, keys, by_key, advance)
            total += ep.length
            masks[ep.end].append(name)
            if ep.captured:
                masks["captured"].append(name)
        data.attrs["total"] = total
        meta = {k: v for k, v in r.meta.items() if isinstance(v, (str, int, float, bool))}
        data.attrs["env_args"] = json.dumps({"env_name": r.env_name, "type": GYM_TYPE,
                                             "env_kwargs": {"rollrec": meta}}, indent=4)
        for name, demos in masks.items():
            f.create_dataset(f"mask/{name}", data=np.array(demos, dtype="S"))


def _write_demo(g: Any, r: ReadableRollout, reader: BlockReader, ep: Episode, keys: dict[str, tuple[str, Any]],
                fields: dict[str, Field], advance: Callable[[int], None]) -> None:
    """One demo: its datasets are created at their full length and filled in pieces."""
    n = ep.length
    g.attrs.update({"num_samples": n, "env": ep.env, "start": ep.start, "stop": ep.stop, "first_row": ep.row_start,
                    "end": ep.end, "return": ep.ret})
    out: dict[str, tuple[Any, Any]] = {}  # obs key -> (obs dataset, next_obs dataset)
    for key, (member, how) in keys.items():
        if isinstance(how, Camera):
            shape, dtype = how.shape, how.dtype
        elif how is None:
            shape, dtype = fields[member].trailing, fields[member].dtype
        else:
            shape, dtype = how[2], fields[member].dtype
        chunks = (1, *shape) if isinstance(how, Camera) else None  # contiguous: written once, at its full length
        out[key] = tuple(g.create_dataset(f"{grp}/{key}", (n, *shape), dtype, chunks=chunks) for grp in ("obs", "next_obs"))
    flat = {member: g.create_dataset(ds, (n, *fields[member].trailing), np.uint8 if member == "done" else fields[member].dtype)
            for member, ds in DATASET_OF.items() if member in fields}
    if "reward_terms" in g:
        g["reward_terms"].attrs["names"] = json.dumps(list(r.reward_term_names))
    for t, rows in reader.chunks(ep):
        a, b = t - ep.row_start, t - ep.row_start + len(next(iter(rows.values())))
        for member, ds in flat.items():
            ds[a:b] = rows[member]
        for key, (member, how) in keys.items():
            if isinstance(how, Camera):
                values = read_frames(r, how, ep.env, (t, t + b - a))
            elif how is None:
                values = rows[member]
            else:
                values = rows[member][:, how[0] : how[1]].reshape(b - a, *how[2])
            obs, nxt = out[key]
            obs[a:b] = values
            nxt[max(a - 1, 0) : b - 1] = values[1:] if a == 0 else values  # next of row j is row j + 1
            if b == n:
                nxt[n - 1] = values[-1]  # after the episode's last step: itself (see the module docstring)
        advance(b - a)


__all__ = ["DATASET_OF", "FILTERS", "GYM_TYPE", "obs_keys", "write_robomimic"]

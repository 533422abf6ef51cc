"""The naive reference for volume control: keep every step on the host, select afterwards.

Loaded by the ``volume_reference`` fixture (`tests/conftest.py`).

`expected_file(steps, N, **options)` computes, in plain Python and numpy from every step that
was given, what a `Recorder` with those options must have written: each member, the episode
index and the meta entries. It follows the documented rules step by step (every=k sums rewards
in the stored dtype one step at a time, as the device does), so the tests compare bytes exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

LIGHT = ("rew", "done", "truncated", "rew_terms", "base_pos", "base_quat")
REQUIRED = ("rew", "done", "truncated", "base_pos", "base_quat")
CONSTANTS = {"truncated": (np.bool_, (), False), "base_pos": (np.float32, (3,), 0.0),
             "base_quat": (np.float32, (4,), (1.0, 0.0, 0.0, 0.0))}
_NP = {torch.float16: np.float16, torch.float32: np.float32, torch.float64: np.float64, torch.int8: np.int8,
       torch.int16: np.int16, torch.int32: np.int32, torch.int64: np.int64, torch.uint8: np.uint8, torch.bool: np.bool_}


def _np(v: Any) -> np.ndarray:
    if isinstance(v, torch.Tensor):
        return (v.float() if v.dtype == torch.bfloat16 else v).detach().cpu().numpy().copy()
    return np.array(v)


def host_step(given: dict[str, Any]) -> dict[str, np.ndarray]:
    """One `record()` call's arguments as member-name -> host array ``[N, ...]`` (obs/act flattened)."""
    row: dict[str, np.ndarray] = {}
    for k, v in given.items():
        if v is None:
            continue
        if k == "reward_terms":
            terms = [_np(t) for t in v.values()]
            row["rew_terms"] = np.stack(terms, -1).astype(np.result_type(*terms))
        elif k == "obs" and isinstance(v, dict):
            parts = [_np(t) for t in v.values()]
            row["obs"] = np.concatenate([p.reshape(len(p), -1) for p in parts], -1).astype(np.result_type(*parts))
        elif k in ("obs", "act"):
            a = _np(v)
            row[k] = a.reshape(len(a), -1)
        else:
            row[k] = _np(v)
    return row


def _cast(a: np.ndarray, dtype: np.dtype) -> np.ndarray:
    return a.astype(bool) if dtype == np.bool_ else a.astype(dtype)


def expected_file(
    steps: list[dict[str, Any]],
    N: int,
    *,
    envs: list[int] | None = None,
    all_env_fields: tuple[str, ...] | None = None,
    every: int = 1,
    dtypes: dict[str, Any] | None = None,
    fields: tuple[str, ...] | None = None,
    capture: Any = None,
    capture_ref: Callable[[dict[str, Any]], bool] | None = None,
    window: int | None = None,
    quat_order: str = "wxyz",
) -> dict[str, Any]:
    """What the file must hold: ``{member: array}``, plus ``"_kinds"`` and ``"_version"``.

    ``capture_ref(ep) -> bool`` decides a callable trigger for the reference (``ep``: env, start,
    stop, return, terminated, truncated, length).
    """
    host = [host_step(s) for s in steps]
    T0, k = len(host), every
    rows = -(-T0 // k)
    given = host[0].keys()
    light = tuple(all_env_fields) if all_env_fields is not None else LIGHT
    split = envs is not None or capture is not None
    keep = None if fields is None else set(fields) | set(REQUIRED)
    names = [n for n in ("obs", "act", "rew", "done", "truncated", "base_pos", "base_quat", "rew_terms",
                         "link_pos", "link_quat") if n in given] + [n for n in given if n not in (
                             "obs", "act", "rew", "done", "truncated", "base_pos", "base_quat", "rew_terms", "link_pos", "link_quat")]
    consts = [n for n in ("truncated", "base_pos", "base_quat") if n not in given] + (["rew_terms"] if "rew_terms" not in given else [])
    kept = [n for n in names if keep is None or n in keep]
    kept_consts = [n for n in consts if keep is None or n in keep or n == "rew_terms"]

    def stored_dtype(name: str) -> np.dtype:
        if dtypes and name in dtypes:
            return np.dtype(_NP[dtypes[name]])
        if name in ("done", "truncated"):
            return np.dtype(bool)
        if name == "rew_terms":
            return np.dtype(np.float32)
        return host[0][name].dtype

    def where(name: str) -> str:
        if not split or name in light:
            return "all"
        return "detail" if envs is not None else "window"

    full = {n: np.stack([h[n] for h in host]) for n in names}
    for n in consts:
        if n == "rew_terms":
            full[n] = np.zeros((T0, N, 0), np.float32)
        else:
            dt, row, value = CONSTANTS[n]
            full[n] = np.broadcast_to(np.asarray(value, dt), (T0, N, *row)).copy()

    # Rows: the first step of every k, rewards summed and dones OR-ed over the k steps.
    def fold(name: str) -> np.ndarray:
        dt = stored_dtype(name) if name in kept else full[name].dtype
        out = []
        for j in range(rows):
            block = range(j * k, min(j * k + k, T0))
            acc = _cast(full[name][block[0]], dt)
            for t in block[1:]:
                if name in ("done", "truncated"):
                    acc = acc | (full[name][t] != 0)
                elif name in ("rew", "rew_terms"):
                    x = full[name][t]
                    acc = (acc.astype(np.result_type(acc.dtype, x.dtype)) + x).astype(dt)
            out.append(acc)
        arr = np.stack(out) if out else np.zeros((0, *full[name].shape[1:]), dt)
        if quat_order == "xyzw" and name in ("base_quat", "link_quat") and name not in consts:
            arr = arr[..., [3, 0, 1, 2]]
        return arr

    # The episode index, walked step by step.
    done = full["done"] != 0
    trunc = full["truncated"] != 0
    ret = np.zeros(N)
    start = np.zeros(N, np.int64)
    entries = []
    for t in range(T0):
        ret = ret + full["rew"][t].astype(np.float64)
        for e in np.flatnonzero(done[t]):
            end = 2 if trunc[t, e] else 1
            entries.append([int(e), int(start[e]), t + 1, end, float(ret[e])])
            ret[e], start[e] = 0.0, t + 1
    for e in range(N):
        if start[e] < T0:
            entries.append([e, int(start[e]), T0, 0, float(ret[e])])
    index, returns, window_rows = [], [], []
    table = {n: fold(n) for n in [*kept, *kept_consts]}
    counter = 0
    for e, s, stop, end, r in entries:
        first, last = -(-s // k), (stop - 1) // k
        kept_rows = max(0, last - first + 1)
        if capture is not None:
            if end == 0:
                cap = False
            elif capture == "terminated":
                cap = end == 1
            elif isinstance(capture, (int, float)):
                cap = r < capture
            else:
                cap = bool(capture_ref({"env": e, "start": s, "stop": stop, "ret": r, "terminated": end == 1,
                                            "truncated": end == 2, "length": stop - s}))
            n = min(window, kept_rows) if cap else 0
        else:
            cap = True if envs is None else e in envs
            n = kept_rows if cap else 0
        row = -1
        if capture is not None and n > 0:
            row = counter
            counter += n
            window_rows.append((e, last - n + 1, n))
        index.append([e, s, stop, end, int(cap), row, n])
        returns.append(r)

    out: dict[str, Any] = {"_kinds": {}}
    for n in [*kept, *kept_consts]:
        w = where(n)
        out["_kinds"][n] = w
        arr = table[n]
        if w == "detail":
            arr = arr[:, list(envs)]
        elif w == "window":
            parts = [arr[r0 : r0 + cnt, e] for e, r0, cnt in window_rows]
            arr = np.concatenate(parts) if parts else np.zeros((0, *arr.shape[2:]), arr.dtype)
        out[n] = arr
    has_index = envs is not None or capture is not None or every > 1
    if has_index:
        out["episodes"] = np.array(index, np.int64).reshape(-1, 7)
        out["episode_return"] = np.array(returns, np.float64)
    v1 = (not has_index and all(n in out for n in ("obs", "act", "rew_terms"))
          and out["rew_terms"].dtype == np.float32)
    out["_version"] = 1 if v1 else 2
    out["_rows"] = rows
    out["_dense"] = table  # every kept field as [rows, N, ...] (before selecting envs / windows)
    out["_windows"] = window_rows
    return out


def make_steps(T: int, N: int, *, seed: int = 0, p_done: float = 0.15, p_trunc: float = 0.05,
               burst: tuple[int, ...] = (), dict_obs: bool = False, links: bool = True, extras: bool = True,
               numpy: bool = False) -> list[dict[str, Any]]:
    """``T`` steps of random `record()` arguments; every env ends its episode at the steps in ``burst``."""
    rng = np.random.default_rng(seed)
    out = []
    for t in range(T):
        def w(a):
            return a if numpy else torch.from_numpy(a)

        done = rng.random(N) < p_done
        if t in burst:
            done[:] = True
        trunc = done & (rng.random(N) < p_trunc / max(p_done, 1e-9))
        step: dict[str, Any] = {
            "obs": {"joint": w(rng.normal(size=(N, 3)).astype(np.float32)),
                    "image": w(rng.normal(size=(N, 2, 2)).astype(np.float32))} if dict_obs
            else w(rng.normal(size=(N, 6)).astype(np.float32)),
            "act": w(rng.normal(size=(N, 2)).astype(np.float64)),
            "rew": w(rng.normal(size=N).astype(np.float32)),
            "done": w(done),
            "truncated": w(trunc),
            "base_pos": w(rng.normal(size=(N, 3)).astype(np.float32)),
            "base_quat": w(rng.normal(size=(N, 4)).astype(np.float32)),
            "reward_terms": {"a": w(rng.normal(size=N).astype(np.float32)), "b": w(rng.normal(size=N).astype(np.float32))},
        }
        if links:
            step["link_pos"] = w(rng.normal(size=(N, 3, 3)).astype(np.float32))
            step["link_quat"] = w(rng.normal(size=(N, 3, 4)).astype(np.float32))
        if extras:
            step["contact"] = w(rng.integers(0, 5, size=(N, 4)).astype(np.int32))
        out.append(step)
    return out

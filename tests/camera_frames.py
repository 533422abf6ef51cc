"""Camera frames for the tests: a pattern that encodes its step and env, and the walker's rendered camera.

`pattern(t, envs, shape, dtype)` is a deterministic frame per (step, env) (crash tests compute it
in the child and again in the parent); `walker(steps, envs, size)` renders the built-in walker's
chase camera (`rollrec.envs.camera.WalkerCamera`, the demo's camera: what the lossy codec's
quality is measured on); `psnr(a, b)` in dB.
"""

from __future__ import annotations

import numpy as np


def pattern(t: int, envs, shape: tuple[int, ...], dtype=np.uint8) -> np.ndarray:
    """``[len(envs), *shape]`` frames of step ``t``: gradients offset by step and env (exact in any dtype)."""
    envs = np.asarray(list(envs), np.int64)
    idx = np.indices(shape).astype(np.int64)
    base = sum((k * 3 + 1) * idx[k] for k in range(len(shape)))  # a gradient along every axis
    values = base[None] + t * 7 + envs.reshape(-1, *([1] * len(shape))) * 31
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return (values * 0.25).astype(dtype)
    if dtype.kind == "b":
        return (values % 3 == 0)
    return (values % (1 << min(8 * dtype.itemsize, 16))).astype(dtype)


def walker(steps: int, envs, size: tuple[int, int] = (128, 128), seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(rgb [steps, M, H, W, 3] uint8, depth [steps, M, H, W] uint16)`` of the walker's chase camera."""
    import torch

    from rollrec.envs import GaitPolicy, WalkerEnv
    from rollrec.envs.camera import WalkerCamera

    env = WalkerEnv(max(envs) + 1, seed=seed)
    camera = WalkerCamera(env, envs=envs, size=size)
    policy = GaitPolicy()
    obs = env.reset()
    rgb, depth = [], []
    with torch.no_grad():
        for _ in range(steps):
            image, d = camera.render()
            rgb.append(image.numpy())
            depth.append(d.numpy().astype(np.uint16))
            obs = env.step(policy(obs))[0]
    return np.stack(rgb), np.stack(depth)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)

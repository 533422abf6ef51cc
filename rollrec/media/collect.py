"""Run a policy in an env that renders, and keep or stream what it renders."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from rollrec.media.frames import batch_to_uint8_rgb, is_batch, to_uint8_rgb
from rollrec.media.headless_gl import headless_hint, use_egl_if_headless
from rollrec.media.writer import VideoWriter

__all__ = ["RenderFailedError", "collect_frames_from_env"]


class RenderFailedError(RuntimeError):
    """``env.render()`` raised or returned nothing; ``step`` says at which step."""

    def __init__(self, step: int, message: str):
        super().__init__(f"env.render() failed at step {step}: {message}")
        self.step = step


class RenderableEnv(Protocol):
    """What `collect_frames_from_env` needs from an env."""

    def step(self, action: Any) -> tuple: ...

    def render(self) -> Any: ...


def _first_obs(env: Any) -> Any:
    obs = env.reset() if hasattr(env, "reset") else env.get_obs()
    if isinstance(obs, tuple) and len(obs) == 2 and isinstance(obs[1], dict):  # gymnasium (obs, info)
        obs = obs[0]
    return obs


def _all_done(done: Any) -> bool:
    if hasattr(done, "all"):
        return bool(done.all())
    return bool(np.all(np.asarray(done)))


def _render(env: Any, step: int) -> Any:
    try:
        frame = env.render()
    except Exception as exc:
        hint = headless_hint(env)
        raise RenderFailedError(step, f"{type(exc).__name__}: {exc}" + (f" ({hint})" if hint else "")) from exc
    if frame is None:
        raise RenderFailedError(step, "it returned None (does the env render? e.g. render_mode='rgb_array')")
    return frame


def collect_frames_from_env(
    env: Any,
    policy: Any,
    max_steps: int = 2000,
    path: str | os.PathLike | None = None,
    fps: float = 30,
    **writer_options: Any,
) -> list[np.ndarray] | Path:
    """Step ``env`` with ``policy`` and capture ``env.render()`` before each step.

    ``env`` has ``reset()`` (or ``get_obs()``), ``step(action)`` returning a 4-tuple
    ``(obs, rew, done, info)`` or 5-tuple ``(obs, rew, terminated, truncated, info)``, and
    ``render()`` returning a frame ``[H, W, C]`` or a batch ``[N, H, W, C]`` (numpy or torch,
    uint8 or float in [0, 1]). ``policy`` maps obs to action (called under ``torch.no_grad``
    when torch is importable). Runs ``max_steps`` steps, or fewer when every env is done at once
    (a single env: its episode ends); frame ``t`` shows the state that step ``t`` acted on.

    Without ``path``: returns the frames as a list of uint8 arrays (``[H, W, 3]``, or
    ``[N, H, W, 3]`` for batches), all held in memory. With ``path``: streams them to a video
    (batches tiled, see `VideoWriter`; ``writer_options`` go there) in constant memory and
    returns the path. A failing render raises `RenderFailedError` naming the step (nothing is
    swallowed; with ``path`` no file is left under it).

    A Gymnasium MuJoCo env on Linux without a display renders through EGL: ``MUJOCO_GL=egl`` is
    set before its first render when ``MUJOCO_GL`` is unset and nothing has chosen an OpenGL
    platform yet (`rollrec.media.headless_gl`); when MuJoCo still cannot render, the error
    says which variable to set.
    """
    if max_steps < 1:
        raise ValueError(f"max_steps must be at least 1, got {max_steps}")
    writer = VideoWriter(path, fps, **writer_options) if path is not None else None
    use_egl_if_headless(env)
    frames: list[np.ndarray] = []
    try:
        import torch

        no_grad = torch.no_grad()
    except ImportError:  # pragma: no cover - torch is a dependency, but keep this usable without
        import contextlib

        no_grad = contextlib.nullcontext()
    try:
        with no_grad:
            obs = _first_obs(env)
            for t in range(max_steps):
                frame = _render(env, t)
                if writer is not None:
                    writer.write(frame)
                else:
                    frames.append(
                        batch_to_uint8_rgb(frame) if is_batch(frame) else to_uint8_rgb(frame).copy()
                    )
                out = env.step(policy(obs))
                if len(out) == 5:
                    obs, _, terminated, truncated, _ = out
                    done = (
                        (terminated | truncated)
                        if hasattr(terminated, "__or__")
                        else (terminated or truncated)
                    )
                elif len(out) == 4:
                    obs, _, done, _ = out
                else:
                    raise ValueError(f"env.step returned {len(out)} values; expected 4 or 5")
                if _all_done(done):
                    break
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    if writer is not None:
        return writer.close()
    return frames

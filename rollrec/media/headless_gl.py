"""Rendering Gymnasium's MuJoCo envs on a machine without a display.

Gymnasium's `MujocoRenderer` picks its OpenGL platform when it makes its first viewer (the first
``render()``): ``MUJOCO_GL`` if set, else the first of glfw, egl, osmesa that imports. glfw
imports without a display and then fails in ``mjr_makeContext`` ("an OpenGL platform library has
not been loaded"), which a MuJoCo build may turn into an abort of the process.
(gymnasium/envs/mujoco/mujoco_rendering.py: ``BaseRender._get_opengl_backend``,
``MujocoRenderer._get_viewer``; mujoco/egl/__init__.py sets ``PYOPENGL_PLATFORM=egl`` itself.)

`use_egl_if_headless` sets ``MUJOCO_GL=egl`` before that first render when nothing else has chosen:
Linux, no ``DISPLAY``/``WAYLAND_DISPLAY``, ``MUJOCO_GL`` unset, no viewer made yet, and PyOpenGL
not yet imported for another platform. `headless_hint` is what to tell the user otherwise.
"""

from __future__ import annotations

import os
import sys
from typing import Any

__all__ = ["headless_hint", "is_headless", "mujoco_renderers", "use_egl_if_headless"]

#: What to do when MuJoCo cannot render for want of a display.
HINT = ("MuJoCo has no OpenGL context: without a display, set MUJOCO_GL=egl (or osmesa) before the first "
        "render, e.g. MUJOCO_GL=egl python script.py")


def is_headless() -> bool:
    """Linux without an X11 or Wayland display (where glfw cannot make a context)."""
    return sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def mujoco_renderers(env: Any) -> list[Any]:
    """The Gymnasium `MujocoRenderer` of ``env``, or of each env of a vector env (`SyncVectorEnv`
    ``envs``); empty for anything else."""
    unwrapped = getattr(env, "unwrapped", env)
    envs = getattr(unwrapped, "envs", None)
    if isinstance(envs, (list, tuple)):
        return [r for e in envs for r in mujoco_renderers(e)]
    renderer = getattr(unwrapped, "mujoco_renderer", None)
    return [renderer] if renderer is not None else []


def use_egl_if_headless(env: Any) -> bool:
    """Set ``MUJOCO_GL=egl`` for ``env``'s first render when that is safe (see the module doc);
    returns whether it did. Changes this process's environment (``MUJOCO_GL``), nothing else."""
    renderers = mujoco_renderers(env)
    if not renderers or "MUJOCO_GL" in os.environ or not is_headless():
        return False
    if any(getattr(r, "_viewers", None) for r in renderers):  # a platform is chosen already
        return False
    if "OpenGL" in sys.modules and os.environ.get("PYOPENGL_PLATFORM", "").lower() != "egl":
        return False  # PyOpenGL is loaded for another platform: EGL would fail
    os.environ["MUJOCO_GL"] = "egl"
    return True


def headless_hint(env: Any) -> str | None:
    """`HINT` when ``env`` renders with MuJoCo on a headless machine without ``MUJOCO_GL``, else None."""
    if mujoco_renderers(env) and is_headless() and not os.environ.get("MUJOCO_GL"):
        return HINT
    return None

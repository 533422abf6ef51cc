"""`MuJoCoCamera`: a MuJoCo camera of some envs (``MjModel`` and one ``MjData`` per env), for ``images=``.

Renders with MuJoCo's own offscreen renderer (``mujoco.Renderer``: ``mjv_updateScene`` then
``mjr_render`` into an offscreen buffer, ``mujoco/python/mujoco/renderer.py``), which needs an
OpenGL context: ``MUJOCO_GL=egl`` (a GPU's EGL, or Mesa's llvmpipe on a CPU machine) or
``osmesa``; `rendering_unavailable` says why there is none. Like the pose sources it is called
before the step, and it refreshes the kinematics first (``mj_kinematics`` and ``mj_camlight``:
``mj_step`` leaves ``xpos`` one substep behind ``qpos``), so the picture shows the state the obs
describes; it changes nothing the next step reads.

By default shadows, reflections and multisampling are off: on Mesa's llvmpipe they cost about 4x
(a 64x64 Ant frame: 370 ms with them, 85 ms without, here), and a policy's camera rarely has them.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np


def rendering_unavailable() -> str | None:
    """None when MuJoCo can render offscreen here, else why not (one line). Sets ``MUJOCO_GL=egl``
    when no backend is chosen, there is no display (the default, GLFW, needs one) and mujoco is not
    imported yet (it reads the variable when it is imported)."""
    imported = "mujoco" in sys.modules  # mujoco picks its GL backend when it is imported
    if "MUJOCO_GL" not in os.environ and not os.environ.get("DISPLAY") and not imported:
        os.environ["MUJOCO_GL"] = "egl"
    try:
        import mujoco
    except ImportError:
        return "mujoco is not installed (pip install 'rollrec[mujoco]')"
    backend = getattr(getattr(mujoco, "GLContext", None), "__module__", "")
    if backend.endswith("glfw") and not os.environ.get("DISPLAY") and sys.platform.startswith("linux"):
        # GLFW without a display aborts the process (it does not raise): never try it.
        return ("mujoco was imported with the GLFW backend, which needs a display; set MUJOCO_GL=egl (or osmesa) "
                "before mujoco is imported")
    try:
        model = mujoco.MjModel.from_xml_string("<mujoco><worldbody><geom size='1' type='sphere'/></worldbody></mujoco>")
        with mujoco.Renderer(model, 8, 8) as renderer:
            renderer.update_scene(mujoco.MjData(model))
            renderer.render()
    except Exception as exc:  # noqa: BLE001 - any failure to get a GL context means no rendering
        backend = os.environ.get("MUJOCO_GL", "glfw")
        return f"MuJoCo cannot render offscreen with MUJOCO_GL={backend} ({type(exc).__name__}: {exc})".replace("\n", " ")
    return None


class MuJoCoCamera:
    """Camera ``camera`` (a name or id; default: the model's first camera, else MuJoCo's free
    camera) of envs ``envs`` (default all) of ``model`` with ``datas`` (one ``MjData`` per env),
    ``size`` ``(height, width)`` pixels. Calling it returns ``{name: [M, H, W, 3] uint8}`` (``name``
    defaults to the camera's name): what ``Recorder.record(images=...)`` takes, with ``envs=``
    the same envs. ``fast``: shadows, reflections and multisampling off (see the module docstring).
    """

    def __init__(self, model: Any, datas: Sequence[Any], *, envs: Sequence[int] | None = None,
                 camera: str | int | None = None, size: tuple[int, int] = (64, 64), name: str | None = None,
                 fast: bool = True):
        import mujoco

        self._mujoco = mujoco
        self.model = model
        self.datas = list(datas)
        self.envs = list(range(len(self.datas))) if envs is None else [int(e) for e in envs]
        if camera is None:
            camera = 0 if model.ncam else -1
        if isinstance(camera, str):
            cam_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, camera)
            if cam_id < 0:
                raise ValueError(f"MuJoCoCamera: the model has no camera {camera!r}")
            camera = cam_id
        self.camera = int(camera)
        default = mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_CAMERA, self.camera) if self.camera >= 0 else "free"
        self.name = name or default or f"camera{self.camera}"
        height, width = (int(s) for s in size)
        samples = model.vis.quality.offsamples
        if fast:
            model.vis.quality.offsamples = 0  # read when the context is made: restored right after
        try:
            self._renderer = mujoco.Renderer(model, height, width)
        finally:
            model.vis.quality.offsamples = samples
        self._fast = fast
        self.size = (height, width)

    def __call__(self) -> dict[str, np.ndarray]:
        mj, r = self._mujoco, self._renderer
        out = np.empty((len(self.envs), *self.size, 3), np.uint8)
        for k, env in enumerate(self.envs):
            data = self.datas[env]
            mj.mj_kinematics(self.model, data)
            mj.mj_camlight(self.model, data)
            r.update_scene(data, camera=self.camera)
            if self._fast:
                r.scene.flags[mj.mjtRndFlag.mjRND_SHADOW] = False
                r.scene.flags[mj.mjtRndFlag.mjRND_REFLECTION] = False
            r.render(out=out[k])
        return {self.name: out}

    def close(self) -> None:
        self._renderer.close()


__all__ = ["MuJoCoCamera", "rendering_unavailable"]

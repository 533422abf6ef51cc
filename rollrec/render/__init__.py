"""Headless CPU rendering of recorded rollouts to video (OpenCV drawing, ffmpeg encoding)."""

from rollrec.render.camera import CAMERA_PRESETS, Camera, preset_camera
from rollrec.render.rollout import default_fps, render_frames, render_rollout
from rollrec.render.scene import EnvScene

__all__ = [
    "CAMERA_PRESETS",
    "Camera",
    "EnvScene",
    "default_fps",
    "preset_camera",
    "render_frames",
    "render_rollout",
]

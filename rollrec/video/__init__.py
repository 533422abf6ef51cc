"""Videos: rendering recorded rollouts headless on the CPU (`camera`, `draw`, `bodies`, `scene`,
`render`; ``rollrec video``) and writing any frames to video files (`writer`, `frames`,
`background`, `collect`).

May import: `rollrec.io`, `rollrec.model`, `rollrec.geometry` and the layers below them; never
`rollrec.viewer` (the two share what they need through `rollrec.geometry`).
"""

from rollrec.video.background import BackgroundVideoWriter
from rollrec.video.camera import CAMERA_PRESETS, Camera, preset_camera
from rollrec.video.collect import RenderFailedError, collect_frames_from_env
from rollrec.video.frames import tile_frames, to_uint8_rgb
from rollrec.video.render import default_fps, render_frames, render_rollout
from rollrec.video.scene import EnvScene
from rollrec.video.writer import VideoWriter, save_env_videos, save_video

__all__ = [
    "CAMERA_PRESETS",
    "BackgroundVideoWriter",
    "Camera",
    "EnvScene",
    "RenderFailedError",
    "VideoWriter",
    "collect_frames_from_env",
    "default_fps",
    "preset_camera",
    "render_frames",
    "render_rollout",
    "save_env_videos",
    "save_video",
    "tile_frames",
    "to_uint8_rgb",
]

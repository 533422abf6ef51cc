"""Videos of recorded rollouts, rendered headless on the CPU (`camera`, `draw`, `scene`, `render`,
``rollrec video``). Writing frames to mp4 lives one layer down, in `rollrec.media` (the recorder
uses it too); its user-facing names are re-exported here."""

from rollrec.video.camera import CAMERA_PRESETS, Camera, preset_camera
from rollrec.video.render import default_fps, render_frames, render_rollout
from rollrec.video.scene import EnvScene
from rollrec.media.writer import VideoWriter, save_env_videos, save_video

__all__ = [
    "CAMERA_PRESETS",
    "Camera",
    "EnvScene",
    "VideoWriter",
    "default_fps",
    "preset_camera",
    "render_frames",
    "render_rollout",
    "save_env_videos",
    "save_video",
]

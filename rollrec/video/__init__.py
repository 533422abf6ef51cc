"""Videos of recorded rollouts, rendered headless on the CPU (`camera`, `draw`, `bodies`, `scene`,
`render`; ``rollrec video``), or made of a camera recorded with the rollout (`cameras`). Writing frames to video files lives one layer down, in
`rollrec.media` (the recorder uses it too); its user-facing names are re-exported here.

May import: `rollrec.io`, `rollrec.media`, `rollrec.model`, `rollrec.geometry` and the layers below
them; never `rollrec.viewer` (the two share what they need through `rollrec.geometry`).
"""

from rollrec.media.background import BackgroundVideoWriter
from rollrec.media.collect import RenderFailedError, collect_frames_from_env
from rollrec.media.frames import tile_frames, to_uint8_rgb
from rollrec.media.writer import VideoWriter, save_env_videos, save_video
from rollrec.video.camera import CAMERA_PRESETS, Camera, preset_camera
from rollrec.video.render import default_fps, render_frames, render_rollout
from rollrec.video.scene import EnvScene

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

"""rollrec: record rollouts of massively parallel simulations, replay them, render them.

Names are imported on first use, so reading a file (`load`) or rendering a video does not pay
for importing torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rollrec._lazy import lazy_exports

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "FORMAT_VERSION": "rollrec.io.format",
    "LegacyPickleError": "rollrec.io.errors",
    "RolloutFormatError": "rollrec.io.errors",
    "Rollout": "rollrec.io.reader",
    "load": "rollrec.io.reader",
    "ShardedRollout": "rollrec.io.sharded",
    "MissingEnvsError": "rollrec.io.sharded",
    "MissingEnvsWarning": "rollrec.io.sharded",
    "recover": "rollrec.io.writer",
    "save_rollout": "rollrec.io.writer",
    "Recorder": "rollrec.engine.recorder",
    "RolloutRecorder": "rollrec.loop.rollout",
    "make_policy": "rollrec.loop.policy",
    "adapt": "rollrec.adapters.base",
    "Step": "rollrec.adapters.base",
    "GenesisPoses": "rollrec.adapters.genesis",
    "MjxPoses": "rollrec.adapters.mujoco",
    "MuJoCoPoses": "rollrec.adapters.mujoco",
    "NewtonPoses": "rollrec.adapters.newton",
    "VideoWriter": "rollrec.video.writer",
    "save_video": "rollrec.video.writer",
    "save_env_videos": "rollrec.video.writer",
    "BackgroundVideoWriter": "rollrec.video.background",
    "collect_frames_from_env": "rollrec.video.collect",
    "RenderFailedError": "rollrec.video.collect",
    "tile_frames": "rollrec.video.frames",
    "to_uint8_rgb": "rollrec.video.frames",
    "render_rollout": "rollrec.video",
    "RobotModel": "rollrec.model.robot",
    "model_from_mujoco": "rollrec.model.mujoco",
    "model_from_urdf": "rollrec.model.urdf",
    "serve": "rollrec.viewer",
}

__all__ = sorted([*_EXPORTS, "__version__"])


__getattr__, __dir__ = lazy_exports("rollrec", _EXPORTS, __all__, globals())


if TYPE_CHECKING:  # for type checkers and IDEs: the same names, imported eagerly
    from rollrec.adapters.base import Step, adapt
    from rollrec.adapters.genesis import GenesisPoses
    from rollrec.adapters.mujoco import MjxPoses, MuJoCoPoses
    from rollrec.adapters.newton import NewtonPoses
    from rollrec.loop.policy import make_policy
    from rollrec.engine.recorder import Recorder
    from rollrec.loop.rollout import RolloutRecorder
    from rollrec.io.errors import LegacyPickleError, RolloutFormatError
    from rollrec.io.format import FORMAT_VERSION
    from rollrec.io.reader import Rollout, load
    from rollrec.io.sharded import MissingEnvsError, MissingEnvsWarning, ShardedRollout
    from rollrec.io.writer import recover, save_rollout
    from rollrec.model.mujoco import model_from_mujoco
    from rollrec.model.robot import RobotModel
    from rollrec.model.urdf import model_from_urdf
    from rollrec.video import render_rollout
    from rollrec.video.background import BackgroundVideoWriter
    from rollrec.video.collect import RenderFailedError, collect_frames_from_env
    from rollrec.video.frames import tile_frames, to_uint8_rgb
    from rollrec.video.writer import VideoWriter, save_env_videos, save_video
    from rollrec.viewer import serve

"""rollrec: record rollouts of massively parallel simulations, replay them, render them.

Names are imported on first use, so reading a file (`load`) or rendering a video does not pay
for importing torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rollrec._lazy import lazy_exports
from rollrec._version import __version__

# public name -> module that defines it
_EXPORTS = {
    "FORMAT_VERSION": "rollrec.format.meta",
    "LegacyPickleError": "rollrec.format.errors",
    "RolloutFormatError": "rollrec.format.errors",
    "Rollout": "rollrec.io.reader",
    "load": "rollrec.io.opening",
    "ShardedRollout": "rollrec.io.sharded.rollout",
    "MissingEnvsError": "rollrec.io.sharded.rollout",
    "MissingEnvsWarning": "rollrec.io.sharded.rollout",
    "recover": "rollrec.io.recovery",
    "save_rollout": "rollrec.io.save",
    "Recorder": "rollrec.engine.recorder",
    "RolloutRecorder": "rollrec.engine.rollout",
    "make_policy": "rollrec.engine.policy",
    "adapt": "rollrec.adapters.base",
    "Step": "rollrec.adapters.base",
    "GenesisPoses": "rollrec.adapters.genesis",
    "MjxPoses": "rollrec.adapters.mujoco",
    "MuJoCoPoses": "rollrec.adapters.mujoco",
    "NewtonPoses": "rollrec.adapters.newton",
    "VideoWriter": "rollrec.media.writer",
    "save_video": "rollrec.media.writer",
    "save_env_videos": "rollrec.media.writer",
    "BackgroundVideoWriter": "rollrec.media.background",
    "collect_frames_from_env": "rollrec.media.collect",
    "RenderFailedError": "rollrec.media.collect",
    "tile_frames": "rollrec.media.frames",
    "to_uint8_rgb": "rollrec.media.frames",
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
    from rollrec.engine.policy import make_policy
    from rollrec.engine.recorder import Recorder
    from rollrec.engine.rollout import RolloutRecorder
    from rollrec.format.errors import LegacyPickleError, RolloutFormatError
    from rollrec.format.meta import FORMAT_VERSION
    from rollrec.io.opening import load
    from rollrec.io.reader import Rollout
    from rollrec.io.recovery import recover
    from rollrec.io.save import save_rollout
    from rollrec.io.sharded.rollout import MissingEnvsError, MissingEnvsWarning, ShardedRollout
    from rollrec.model.mujoco import model_from_mujoco
    from rollrec.model.robot import RobotModel
    from rollrec.model.urdf import model_from_urdf
    from rollrec.video import render_rollout
    from rollrec.media.background import BackgroundVideoWriter
    from rollrec.media.collect import RenderFailedError, collect_frames_from_env
    from rollrec.media.frames import tile_frames, to_uint8_rgb
    from rollrec.media.writer import VideoWriter, save_env_videos, save_video
    from rollrec.viewer import serve

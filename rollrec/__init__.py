"""rollrec: record rollouts of massively parallel simulations, replay them, render them.

The API speaks the command line's verbs::

    rollrec.load(path) / rollrec.save(path, ...)   a rollout file (rollrec info), Rollout, RolloutFormatError
    rollrec.recover(path)                           rollrec recover
    rollrec.compare(a, b, ...)                      rollrec compare: is B better than A (plain data)
    Recorder, RolloutRecorder, make_policy, adapt   recording (rollrec demo records with them);
    Volume                                          what a recording keeps (Recorder(..., volume=Volume(...)))
    rollrec.replay(path)                            rollrec replay: the browser replay
    rollrec.render_video(rollout, out)              rollrec video; save_video, VideoWriter for any frames
    rollrec.export(rollout, out, to=...)            rollrec export: LeRobot, robomimic, Rerun, viser
    RobotModel, model_from_mujoco, model_from_urdf  the robot's geometry stored with a rollout

Everything else lives in a subpackage with its own ``__all__``: `rollrec.io` (rollouts on
disk), `rollrec.stats` (runs compared), `rollrec.engine` (the recorder), `rollrec.adapters` (one
per framework, pose sources), `rollrec.viewer`, `rollrec.video`, `rollrec.exports`, `rollrec.model`.
Names that used to live here (``serve``, ``render_rollout``, ``save_rollout``, ``MuJoCoPoses``,
``tile_frames``, ...) still work and warn with a `DeprecationWarning` naming their new place.

Names are imported on first use, so reading a file (`load`) or rendering a video does not pay
for importing torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rollrec._lazy import lazy_exports

from rollrec._version import __version__

# public name -> where it is defined ("package" for its attribute of that name, "package:attr")
_EXPORTS = {
    "load": "rollrec.io",
    "save": "rollrec.io:save_rollout",
    "recover": "rollrec.io",
    "compare": "rollrec.stats.compare",
    "Rollout": "rollrec.io",
    "RolloutFormatError": "rollrec.io",
    "Recorder": "rollrec.engine",
    "Volume": "rollrec.engine",
    "RolloutRecorder": "rollrec.loop.rollout",
    "make_policy": "rollrec.loop.policy",
    "adapt": "rollrec.adapters",
    "replay": "rollrec.viewer:serve",
    "render_video": "rollrec.video:render_rollout",
    "save_video": "rollrec.video",
    "export": "rollrec.exports",
    "VideoWriter": "rollrec.video",
    "RobotModel": "rollrec.model",
    "model_from_mujoco": "rollrec.model",
    "model_from_urdf": "rollrec.model",
}

# old public name -> (where it is defined, its new public name); not in __all__ nor dir()
_DEPRECATED = {
    "serve": ("rollrec.viewer", "rollrec.replay"),
    "render_rollout": ("rollrec.video", "rollrec.render_video"),
    "save_rollout": ("rollrec.io", "rollrec.save"),
    "FORMAT_VERSION": ("rollrec.io", "rollrec.io.FORMAT_VERSION"),
    "LegacyPickleError": ("rollrec.io", "rollrec.io.LegacyPickleError"),
    "ShardedRollout": ("rollrec.io.sharded", "rollrec.io.sharded.ShardedRollout"),
    "MissingEnvsError": ("rollrec.io.sharded", "rollrec.io.sharded.MissingEnvsError"),
    "MissingEnvsWarning": ("rollrec.io.sharded", "rollrec.io.sharded.MissingEnvsWarning"),
    "Step": ("rollrec.adapters", "rollrec.adapters.Step"),
    "GenesisPoses": ("rollrec.adapters", "rollrec.adapters.GenesisPoses"),
    "MjxPoses": ("rollrec.adapters", "rollrec.adapters.MjxPoses"),
    "MuJoCoPoses": ("rollrec.adapters", "rollrec.adapters.MuJoCoPoses"),
    "NewtonPoses": ("rollrec.adapters", "rollrec.adapters.NewtonPoses"),
    "save_env_videos": ("rollrec.video", "rollrec.video.save_env_videos"),
    "BackgroundVideoWriter": ("rollrec.video", "rollrec.video.BackgroundVideoWriter"),
    "collect_frames_from_env": ("rollrec.video", "rollrec.video.collect_frames_from_env"),
    "RenderFailedError": ("rollrec.video", "rollrec.video.RenderFailedError"),
    "tile_frames": ("rollrec.video", "rollrec.video.tile_frames"),
    "to_uint8_rgb": ("rollrec.video", "rollrec.video.to_uint8_rgb"),
}

__all__ = sorted([*_EXPORTS, "__version__"])


__getattr__, __dir__ = lazy_exports("rollrec", _EXPORTS, __all__, globals(), _DEPRECATED)


if TYPE_CHECKING:  # for type checkers and IDEs: the same names, imported eagerly
    from rollrec.adapters import adapt
    from rollrec.engine import Recorder, Volume
    from rollrec.exports import export
    from rollrec.loop.policy import make_policy
    from rollrec.loop.rollout import RolloutRecorder
    from rollrec.io import Rollout, RolloutFormatError, load, recover
    from rollrec.io import save_rollout as save
    from rollrec.model import RobotModel, model_from_mujoco, model_from_urdf
    from rollrec.stats.compare import compare
    from rollrec.video import VideoWriter, save_video
    from rollrec.video import render_rollout as render_video
    from rollrec.viewer import serve as replay

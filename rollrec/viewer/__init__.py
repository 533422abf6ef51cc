"""Browser replay of rollouts on viser: any env, every playback control, plots of any field, an
overview of every episode of every env, and two rollouts compared.

`serve` is the entry point (``rollrec replay FILE [FILE_B]`` and `rollrec.replay` call it);
`ReplayApp` (`app`) wires a `ReplayState` (`state`, with `clock`, `camera`, `fields`: plain
Python, tested without a browser) to viser's scene (`scene`, `bodies`) and panels (`gui`,
`plots`, `fields_gui`); the recorded cameras' panel is `cameras` (plain Python) and `cameras_gui`. The overview and compare tabs live in `rollrec.viewer.overview`, whose
table (`compute_overview`) is plain numpy and usable on its own.

May import: `rollrec.io` (rollouts, through `rollrec.io.protocol.ReadableRollout`),
`rollrec.model`, `rollrec.geometry`, `rollrec.media` (the cameras' colour maps) and the layers below; never `rollrec.video` (what both need
lives in `rollrec.geometry`). ``__main__`` (``python -m rollrec.viewer --npz FILE``, the original
tool's spelling) is an entry point and calls `rollrec.cli`.
"""

from rollrec.viewer.app import ReplayApp
from rollrec.viewer.camera import CAMERA_MODES, CameraPose, camera_pose
from rollrec.viewer.clock import SPEEDS, FrameClock
from rollrec.viewer.overview.compare import IncomparableError, check_comparable
from rollrec.viewer.gui import HOTKEYS
from rollrec.viewer.overview import ENDED_BY, Overview, compute_overview
from rollrec.viewer.server import serve, stop_app
from rollrec.viewer.state import EnvData, ReplayState, read_env

__all__ = [
    "CAMERA_MODES",
    "ENDED_BY",
    "HOTKEYS",
    "SPEEDS",
    "CameraPose",
    "EnvData",
    "FrameClock",
    "IncomparableError",
    "Overview",
    "ReplayApp",
    "ReplayState",
    "camera_pose",
    "check_comparable",
    "compute_overview",
    "read_env",
    "serve",
    "stop_app",
]

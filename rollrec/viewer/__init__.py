"""Browser replay of rollouts on viser: any env, every playback control, reward plots.

`serve` is the entry point (``rollrec replay FILE`` calls it); `ReplayApp` wires a
`ReplayState` (plain Python, tested without a browser) to viser's scene and GUI.
"""

from rollrec.viewer.app import ReplayApp, serve, stop_app
from rollrec.viewer.clock import SPEEDS, FrameClock
from rollrec.viewer.gui import HOTKEYS
from rollrec.viewer.state import CAMERA_MODES, CameraPose, EnvData, ReplayState, camera_pose, read_env

__all__ = [
    "CAMERA_MODES",
    "HOTKEYS",
    "SPEEDS",
    "CameraPose",
    "EnvData",
    "FrameClock",
    "ReplayApp",
    "ReplayState",
    "camera_pose",
    "read_env",
    "serve",
    "stop_app",
]

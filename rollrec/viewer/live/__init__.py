"""The replay of a recording in progress: what grows, and the live controls.

- `growth`: the selected env's trajectory extended over new rows (plain numpy);
- `panel`: the LIVE line and "Jump to latest", and the policy / simulation controls of a session
  served by the rollout loop (viser handles);
- `follower`: `LiveFollower`, the thread that grows a `ReplayApp` as the recording commits steps.

The overview's growth is `rollrec.viewer.overview.growing`; the recording is read through
`rollrec.io.live`.
"""

from rollrec.viewer.live.follower import POLL_S, LiveFollower
from rollrec.viewer.live.growth import extend_env

__all__ = ["POLL_S", "LiveFollower", "extend_env"]

"""How `Recorder.record_frame` hands frames on: to a `FrameSink`, made when the first frame comes.

The engine knows nothing of encoding. It needs three things of whatever takes the frames: take
one frame (or a batch of N renders) as the picture of a kept row, without holding the caller's
buffer; finish and say which rows were written; or give up. That is `FrameSink`. By default the
sink is `rollrec.media.background.BackgroundVideoWriter` (an mp4 beside the rollout, encoded on
a background thread), imported only when the first frame comes, so recording without frames
never loads the video stack; ``Video(sink=...)`` (`rollrec.engine.options`) supplies another.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol


class FrameSink(Protocol):
    """What the frames of a recording go to."""

    def submit(self, step: int, frame: Any) -> None:
        """Take ``frame`` (``[H, W, C]``, or a batch ``[N, H, W, C]``; numpy or torch, uint8 or float
        in [0, 1]) as the picture of row ``step``; copy it before returning (the caller may reuse
        its buffer). May block to bound memory; raises the error of an earlier failure."""

    def close(self) -> list[int]:
        """Finish; the rows written, in order (frame i shows row ``steps[i]``)."""

    def abort(self) -> None:
        """Stop and leave nothing half written behind."""


#: ``sink(path, fps, envs)``: where the frames of a recording go. ``path`` is the video's path
#: (``run.npz`` -> ``run.mp4``), ``envs`` the envs a batch keeps (None: all).
FrameSinkFactory = Callable[[Path, float, "Sequence[int] | None"], FrameSink]


def video_file(path: Path, fps: float, envs: Sequence[int] | None) -> FrameSink:
    """The default sink: an mp4 at ``path`` encoded on a background thread."""
    from rollrec.media.background import BackgroundVideoWriter  # the video stack loads with the first frame

    return BackgroundVideoWriter(path, fps, envs=None if envs is None else list(envs))


__all__ = ["FrameSink", "FrameSinkFactory", "video_file"]

"""What the replay's camera panel shows: the selected env's recorded cameras at the current frame.

Plain Python (no viser), tested without a browser. `CameraPanel` holds the selected env's frames
of every camera (`Rollout.images`: decoded lazily, playback continues the decoder rather than
seeking) and composes them side by side, scaled to one height, into one RGB picture with a
caption: depth through a colour map (`rollrec.media.colormap`, one scale per env: the 2nd to 98th
percentile of a few of its frames), labels through a palette. An env without frames of a camera
(not a detail env, no captured episode) or a step outside its captured windows shows a dark tile
and says why.
"""

from __future__ import annotations

import cv2
import numpy as np

from rollrec.format.errors import RolloutFormatError
from rollrec.io.protocol import ReadableRollout
from rollrec.media.colormap import DepthRange, kind_of, picture

#: Pixels between two cameras' tiles.
GAP = 2
#: Frames sampled to fix a depth camera's colour scale for an env.
_SCALE_SAMPLES = 5


class CameraPanel:
    """The cameras of ``rollout`` (none: `enabled` is False); see the module docstring."""

    def __init__(self, rollout: ReadableRollout):
        self.rollout = rollout
        self.specs = dict(getattr(rollout, "cameras", {}) or {})
        self.kinds = {name: kind_of(name, spec.shape, np.dtype(spec.dtype)) for name, spec in self.specs.items()}
        self.height = max((spec.shape[0] for spec in self.specs.values()), default=0)
        self.env: int | None = None
        self._frames: dict = {}
        self._scales: dict[str, DepthRange] = {}
        self.error: str | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.specs)

    def set_env(self, env: int) -> None:
        """Show env ``env`` from now on (its frames are opened, not decoded, but for depth scales)."""
        self.env = int(env)
        self._frames, self._scales, self.error = {}, {}, None
        try:
            for name in self.specs:
                frames = self.rollout.images(name, self.env)
                self._frames[name] = frames
                if self.kinds[name] == "depth" and len(frames):
                    picks = np.unique(np.linspace(0, len(frames) - 1, _SCALE_SAMPLES).astype(int))
                    self._scales[name] = DepthRange.of(frames[int(i)] for i in picks)
        except (RolloutFormatError, ImportError) as exc:  # a damaged stream; PyAV or zstandard missing
            self.error = str(exc)

    def show(self, frame: int) -> tuple[np.ndarray | None, str]:
        """``(picture [H, W, 3] uint8, caption)`` at kept row ``frame``; the picture is None when the
        env has no frame of any camera."""
        if self.env is None or not self.enabled:
            return None, ""
        if self.error is not None:
            return None, f"⚠️ {self.error}"
        tiles, notes = [], []
        for name, spec in self.specs.items():
            frames = self._frames[name]
            i = frames.position(frame) if len(frames) else None
            label = f"**{name}**"
            if i is None:
                tiles.append(np.full((spec.shape[0], spec.shape[1], 3), 24, np.uint8))
                notes.append(f"{label}: no frame at this step" if len(frames) else f"{label}: {_why_empty(frames)}")
                continue
            try:
                image = frames[i]
            except (RolloutFormatError, ImportError) as exc:
                return None, f"⚠️ {exc}"
            tiles.append(picture(image, self.kinds[name], self._scales.get(name)))
            notes.append(f"{label} {self._describe(name)}")
        if all(not len(self._frames[n]) for n in self.specs):
            return None, "  \n".join(notes)
        return self._compose(tiles), " · ".join(notes)

    def _describe(self, name: str) -> str:
        spec, kind = self.specs[name], self.kinds[name]
        codec = "H.264" if spec.codec == "h264" else "lossless"
        if kind == "depth":
            s = self._scales.get(name)
            scale = f", {s.near:.4g} (blue) to {s.far:.4g} (red)" if s is not None else ""
            return f"({np.dtype(spec.dtype).name} depth{scale})"
        return f"({kind}, {codec})"

    def _compose(self, tiles: list[np.ndarray]) -> np.ndarray:
        h = self.height
        scaled = [t if t.shape[0] == h else cv2.resize(t, (max(1, round(t.shape[1] * h / t.shape[0])), h),
                                                       interpolation=cv2.INTER_NEAREST) for t in tiles]
        width = sum(t.shape[1] for t in scaled) + GAP * (len(scaled) - 1)
        out = np.full((h, width, 3), 255, np.uint8)
        x = 0
        for t in scaled:
            out[:, x : x + t.shape[1]] = t
            x += t.shape[1] + GAP
        return out


def _why_empty(frames) -> str:
    try:
        frames[0]
    except (IndexError, KeyError) as exc:
        return str(exc.args[0]) if exc.args else "no frames"
    return "no frames"


__all__ = ["GAP", "CameraPanel"]

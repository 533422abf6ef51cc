"""The Cameras folder of the replay's main panel (viser handles): the recorded cameras at the frame.

One image element (every camera side by side, `rollrec.viewer.cameras.CameraPanel`, scaled to the
panel's width) and a caption, sent as PNG so the browser shows the decoded pixels exactly. Updated with every frame pushed (the
playback tick, the slider, steps, env changes), in the same ``server.atomic()`` block as the 3D
scene and the plots, so the three never disagree on the frame.
"""

from __future__ import annotations

import cv2
import numpy as np
import viser

from rollrec.viewer.cameras import CameraPanel

_PLACEHOLDER = np.full((8, 8, 3), 24, np.uint8)
#: Pixels wide the picture is sent at (the browser shows images at their own size): the panel's width.
WIDTH = 360


class CamerasGui:
    """Built inside the current GUI container (the Cameras folder) for ``panel``."""

    def __init__(self, gui: viser.GuiApi, panel: CameraPanel):
        self.panel = panel
        self.image = gui.add_image(_PLACEHOLDER, format="png")
        self.caption = gui.add_markdown("")
        self._shown: tuple[int | None, int] | None = None

    def set_env(self, env: int) -> None:
        self.panel.set_env(env)
        self._shown = None

    def show(self, frame: int) -> None:
        """Show the cameras at ``frame`` (nothing is sent when it is already shown)."""
        key = (self.panel.env, int(frame))
        if key == self._shown:
            return
        self._shown = key
        image, caption = self.panel.show(int(frame))
        self.image.visible = image is not None
        if image is not None:
            self.image.image = _panel_width(image)
        self.caption.content = caption


def _panel_width(image: np.ndarray) -> np.ndarray:
    """``image`` scaled to `WIDTH` pixels wide (nearest: recorded pixels stay sharp squares)."""
    h, w = image.shape[:2]
    if w == WIDTH:
        return image
    return cv2.resize(image, (WIDTH, max(1, round(h * WIDTH / w))), interpolation=cv2.INTER_NEAREST)


__all__ = ["WIDTH", "CamerasGui"]

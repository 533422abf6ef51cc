"""The recording engine: `Recorder`, device ring buffers, asynchronous flush to disk.

`recorder` (the `Recorder`) on `schema` (what the first step fixes), `setup` (the ring and the
file's members), `flush` (segments to the host and the disk), `volume`, `volume_record`,
`episodes`, `gather` (volume control on the device), `images` (camera streams), `shards` and `dist_meta` (a recording
across ``torch.distributed`` ranks), `options` (the option groups) and `frames` (where
`Recorder.record_frame`'s frames go).

Imports: torch, numpy, and the layers below: `rollrec.io` (the file, through
`rollrec.io.partial.PartialRecording`), `rollrec._npz`, `rollrec.format`, `rollrec.model`,
`rollrec.media` (the default frame sink, loaded with the first frame). Never the adapters, the
rollout loop, the viewer or the CLI. Names are imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rollrec._lazy import lazy_exports

_EXPORTS = {
    "Recorder": "rollrec.engine.recorder",
    "Volume": "rollrec.engine.options",
    "Ring": "rollrec.engine.options",
    "Storage": "rollrec.engine.options",
    "Video": "rollrec.engine.options",
    "Images": "rollrec.engine.options",
    "Sharding": "rollrec.engine.options",
    "FrameSink": "rollrec.engine.frames",
}

__all__ = ["FrameSink", "Images", "Recorder", "Ring", "Sharding", "Storage", "Video", "Volume"]

__getattr__, __dir__ = lazy_exports("rollrec.engine", _EXPORTS, __all__, globals())

if TYPE_CHECKING:
    from rollrec.engine.frames import FrameSink
    from rollrec.engine.options import Images, Ring, Sharding, Storage, Video, Volume
    from rollrec.engine.recorder import Recorder

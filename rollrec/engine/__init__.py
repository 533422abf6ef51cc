"""The recording engine: device ring buffers, asynchronous flush to disk, the rollout loop."""

from rollrec.engine.recorder import Recorder

__all__ = ["Recorder"]

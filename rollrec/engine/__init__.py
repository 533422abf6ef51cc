"""The recording engine: device ring buffers, asynchronous flush to disk."""

from rollrec.engine.recorder import Recorder

__all__ = ["Recorder"]

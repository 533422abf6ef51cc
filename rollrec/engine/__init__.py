"""The recording engine: device ring buffers, asynchronous flush to disk, env adapters."""

from rollrec.engine.recorder import Recorder

__all__ = ["Recorder"]

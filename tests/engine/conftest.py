"""Fixtures of the engine tests: the CUDA stand-in (`cuda_standin.py`, not a GPU).

- `cuda_standin`: a `StandInCuda` with two devices swapped into ``torch.cuda`` for the test.
- `cuda_branch`: on top of it, every `FlushPipeline` and `EpisodeGather` made during the test
  takes its CUDA branch for device ``cuda:1`` while its tensors stay on the CPU, so a CPU
  `Recorder` runs the CUDA branch of the pipeline end to end (the main thread's current device
  stays 0: the recorder never calls ``set_device``, as a user with several GPUs may not).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

_spec = importlib.util.spec_from_file_location("cuda_standin", Path(__file__).with_name("cuda_standin.py"))
cuda_standin_module = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("cuda_standin", cuda_standin_module)  # dataclasses look their module up there
_spec.loader.exec_module(cuda_standin_module)

#: The device the `cuda_branch` fixture records on.
STANDIN_DEVICE = torch.device("cuda", 1)


@pytest.fixture
def cuda_standin(monkeypatch) -> Any:
    """The stand-in for ``torch.cuda`` (see `cuda_standin.py`); NOT a GPU."""
    return cuda_standin_module.StandInCuda(devices=2).install(monkeypatch)


@pytest.fixture
def cuda_branch(cuda_standin, monkeypatch) -> Any:
    """The stand-in, with every flush pipeline and episode gather on ``cuda:1`` (see the module doc)."""
    from rollrec.engine import flush, gather

    real_pipeline = flush.FlushPipeline.__init__
    real_gather = gather.EpisodeGather.__init__

    def pipeline_init(self, *args, **kwargs):
        real_pipeline(self, *args, **{**kwargs, "device": STANDIN_DEVICE})

    def gather_init(self, *args, **kwargs):
        real_gather(self, *args, **{**kwargs, "device": STANDIN_DEVICE})

    monkeypatch.setattr(flush.FlushPipeline, "__init__", pipeline_init)
    monkeypatch.setattr(gather.EpisodeGather, "__init__", gather_init)
    return cuda_standin

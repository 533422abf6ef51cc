"""Fixtures of the engine tests.

- `cuda_branch`: on top of the `cuda_standin` fixture (`tests/conftest.py`: a stand-in for
  ``torch.cuda``, not a GPU), every `FlushPipeline` and `EpisodeGather` made during the test
  takes its CUDA branch for device ``cuda:1`` while its tensors stay on the CPU, so a CPU
  `Recorder` runs the CUDA branch of the pipeline end to end (the main thread's current device
  stays 0: the recorder never calls ``set_device``, as a user with several GPUs may not).
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

#: The device the `cuda_branch` fixture records on.
STANDIN_DEVICE = torch.device("cuda", 1)


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

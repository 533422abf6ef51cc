"""`Recorder`'s option groups: each option by its own name or in its group, the same recording."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest
import torch

import rollrec
from rollrec.engine import Recorder, Ring, Sharding, Storage, Video, Volume

N = 4


def _record(path, steps: int = 9, **kwargs):
    with Recorder(path, N, flush_interval_s=None, **kwargs) as rec:
        for t in range(steps):
            rec.record(obs=torch.full((N, 3), float(t)), act=torch.zeros(N, 1), rew=torch.arange(float(N)),
                       done=torch.tensor([t % 3 == 2, False, True, False]))
    return path


@pytest.mark.parametrize("flat, grouped", [
    ({"every": 2, "envs": [1, 3]}, {"volume": Volume(every=2, envs=[1, 3])}),
    ({"capture": "terminated", "window": 2}, {"volume": Volume(capture="terminated", window=2)}),
    ({"segment_steps": 2, "ring_segments": 3}, {"ring": Ring(segment_steps=2, ring_segments=3)}),
    ({"compress": True, "durable": False}, {"storage": Storage(compress=True, durable=False)}),
    ({"distributed": False}, {"sharding": Sharding(distributed=False)}),
])
def test_an_option_by_its_name_or_in_its_group_records_the_same_file(tmp_path, flat, grouped):
    with rollrec.load(_record(tmp_path / "flat.npz", **flat)) as a, rollrec.load(_record(tmp_path / "group.npz", **grouped)) as b:
        assert a.keys() == b.keys()
        assert {k: v for k, v in a.meta.items() if k != "created"} == {k: v for k, v in b.meta.items() if k != "created"}
        for key in a:
            np.testing.assert_array_equal(np.asarray(a.stored(key)), np.asarray(b.stored(key)), err_msg=key)


def test_the_defaults_are_the_keyword_arguments_defaults(tmp_path):
    rec = Recorder(tmp_path / "r.npz", N)
    assert (rec.segment_steps, rec.max_segment_bytes, rec.ring_segments, rec.staging_buffers) == (256, 32 << 20, 4, 2)
    assert (rec.compress, rec.overwrite, rec.durable, rec.direct_io, rec.flush_interval_s) == (False, False, True, None, 1.0)
    assert rec.volume == Volume() and rec.video_envs is None and rec.video_fps is None


def test_an_option_beside_its_group_sets_it_unless_they_disagree(tmp_path):
    rec = Recorder(tmp_path / "r.npz", N, volume=Volume(envs=[0]), every=2, compress=True)
    assert rec.volume == Volume(envs=[0], every=2) and rec.compress is True
    with pytest.raises(ValueError, match=r"every=2 and volume=Volume\(every=3\) disagree: give it once"):
        Recorder(tmp_path / "r.npz", N, volume=Volume(every=3), every=2)


def test_an_unknown_option_or_a_group_of_another_kind_is_refused(tmp_path):
    with pytest.raises(TypeError, match="unexpected keyword argument 'evry'"):
        Recorder(tmp_path / "r.npz", N, evry=2)
    with pytest.raises(TypeError, match="volume must be a rollrec.Volume, got dict"):
        Recorder(tmp_path / "r.npz", N, volume={"every": 2})
    with pytest.raises(ValueError, match="every must be an integer >= 1"):
        Recorder(tmp_path / "r.npz", N, volume=Volume(every=0))  # checked as the keyword always was


def test_the_rollout_loop_passes_grouped_options_on(tmp_path):
    from rollrec.envs import GaitPolicy, WalkerEnv

    path = rollrec.RolloutRecorder(WalkerEnv(3, seed=0), max_steps=6, progress=False,
                                   volume=Volume(every=3)).run(GaitPolicy(), tmp_path)
    with rollrec.load(path) as r:
        assert r.every == 3 and r.T == 2


class _Sink:
    """A frame sink of the test's own (`rollrec.engine.frames.FrameSink`)."""

    made: ClassVar[list] = []

    def __init__(self, path, fps, envs):
        self.args, self.frames, self.aborted = (path, fps, envs), [], False
        _Sink.made.append(self)

    def submit(self, step, frame):
        self.frames.append((step, np.array(frame)))

    def close(self):
        return [s for s, _ in self.frames]

    def abort(self):
        self.aborted = True


def test_frames_go_to_the_sink_given_and_the_file_lists_their_steps(tmp_path):
    _Sink.made.clear()
    path = tmp_path / "r.npz"
    with Recorder(path, N, every=2, video=Video(envs=[1], fps=12.0, sink=_Sink)) as rec:
        for t in range(5):
            rec.record(obs=torch.zeros(N, 3), act=torch.zeros(N, 1), rew=torch.zeros(N), done=torch.zeros(N, dtype=torch.bool))
            rec.record_frame(np.full((N, 4, 4, 3), t, np.uint8))
    (sink,) = _Sink.made
    assert sink.args == (tmp_path / "r.mp4", 12.0, [1])
    assert [s for s, _ in sink.frames] == [0, 1, 2]  # with every=2, the frames of the kept steps
    assert [int(f[0, 0, 0, 0]) for _, f in sink.frames] == [0, 2, 4]
    with rollrec.load(path) as r:
        assert r.meta["video"] == {"file": "r.mp4", "envs": [1], "fps": 12.0, "steps": [0, 1, 2]}


@pytest.mark.slow
def test_record_frame_needs_no_setup_and_loads_the_video_stack_only_with_the_first_frame(tmp_path):
    import subprocess
    import sys

    code = (
        "import sys, torch, rollrec\n"
        f"rec = rollrec.Recorder({str(tmp_path / 'r.npz')!r}, 2)\n"
        "rec.record(obs=torch.zeros(2, 3), act=torch.zeros(2, 1), rew=torch.zeros(2), done=torch.zeros(2, dtype=torch.bool))\n"
        "assert not any(m.startswith(('rollrec.media', 'rollrec.video')) for m in sys.modules), 'video stack loaded'\n"
        "rec.record_frame(torch.zeros(2, 8, 8, 3))\n"
        "rec.close()\n"
        "assert 'rollrec.media.background' in sys.modules and 'rollrec.video' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    assert (tmp_path / "r.mp4").stat().st_size > 0

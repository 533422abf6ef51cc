"""The CUDA benchmark's rows (`rollrec.bench.cuda`), run on the CPU as a smoke test.

The figures only mean something on a GPU (``rollrec bench --only cuda``); here the same code
runs with ``device="cpu"`` so that what each row times and compares stays right: steps 1..T
(the first `record()` allocates and is timed by no row), and the flush against the disk's own
``O_DIRECT`` rate measured in the same run (issue 20, item 12).
"""

from __future__ import annotations

import pytest

from rollrec.bench import cuda


def test_cuda_rows_time_steps_after_the_first_and_set_the_flush_against_the_disk(tmp_path, monkeypatch):
    first_calls = []
    real = cuda.Recorder.record

    def record(self, **kw):
        if self.steps == 0:
            first_calls.append(self.path)
        return real(self, **kw)

    monkeypatch.setattr(cuda.Recorder, "record", record)
    rows = {r.name.split(",")[0]: r for r in cuda.cuda_rows(64, tmp_path, steps=6, repeats=2, device="cpu")}
    host = rows["host time per record()"]
    assert host.value > 0 and host.target == ("<=", 1.0) and "steps 1..T" in host.note
    flush = rows["flush rate (D2H + file"]
    assert flush.value > 0
    if flush.reference is not None:  # the scratch folder's file system takes O_DIRECT
        assert flush.reference_name == "O_DIRECT write, same disk"
        assert flush.ratio_means == "rollrec / disk O_DIRECT rate" and flush.target == (">=", 0.8)
        assert flush.ratio == pytest.approx(flush.value / flush.reference, rel=1e-6)
    loop = rows["step loop slowdown"]
    assert loop.reference > 0.9  # ms per 1 ms step, recording off
    assert "synchronisations in record() and close()" not in rows  # counted on CUDA only
    assert len(first_calls) == 2 * 2  # one recording per repeat in each of the two timed sections
    assert not list(tmp_path.iterdir())  # every file removed


def test_without_a_gpu_the_cuda_section_is_one_skipped_row(tmp_path, monkeypatch):
    monkeypatch.setattr(cuda.torch.cuda, "is_available", lambda: False)
    rows = cuda.cuda_rows(64, tmp_path, steps=4, repeats=1)
    assert len(rows) == 1 and rows[0].value is None and "no CUDA device" in rows[0].note

"""Peak memory of a recording does not grow with its length."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

CHILD = textwrap.dedent(
    """
    import sys, torch
    from rollrec.engine import Recorder
    T, N = int(sys.argv[2]), 512
    obs = torch.randn(N, 128)
    with Recorder(sys.argv[1], N, segment_steps=32, max_steps=None) as rec:
        for t in range(T):
            rec.record(obs=obs, act=obs[:, :8], rew=obs[:, 0], done=obs[:, 1] > 2)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM"):
            print(int(line.split()[1]) * 1024)
    """
)


def peak_rss(tmp_path, T: int) -> int:
    out = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path / f"m{T}.npz"), str(T)],
                         capture_output=True, text=True, check=True, timeout=300)
    return int(out.stdout.split()[-1])


@pytest.mark.slow
def test_peak_rss_flat_in_rollout_length(tmp_path):
    # 2,000 steps are 557 MB of data; 200 steps 56 MB. Only the ring (2 x 32 steps) stays in memory.
    short, long = peak_rss(tmp_path, 200), peak_rss(tmp_path, 2000)
    data_long = 2000 * 512 * (128 + 8 + 1) * 4
    assert long - short < 0.1 * data_long, (short, long)

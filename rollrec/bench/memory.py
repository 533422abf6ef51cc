"""Peak RSS against rollout length: each run is a fresh interpreter that reports its own VmHWM.

rollrec's memory is the ring (plus, on CUDA, pinned staging), whatever T; the original approach
holds every step twice (the lists, then ``np.array``), so its peak grows with T.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from rollrec.bench.measure import Row

SECTION = "4 peak RSS"

_SNIPPET = """
import json, sys, torch
torch.set_num_threads(1)
from rollrec.bench.workload import Workload
mode, N, T, path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
wl = Workload(N)
def hwm():
    for line in open('/proc/self/status'):
        if line.startswith('VmHWM:'):
            return int(line.split()[1]) * 1024
base = hwm()
if mode == 'rollrec':
    from rollrec.engine import Recorder
    with Recorder(path, N, max_steps=T) as rec:
        for t in range(T):
            rec.record(**wl.step(t))
else:
    import numpy as np
    from rollrec.bench.end_to_end import original_record
    np.savez(path, **original_record(wl, T))
print(json.dumps({'base': base, 'peak': hwm()}))
"""


def peak_rss(mode: str, num_envs: int, steps: int, out_dir: Path) -> dict[str, int]:
    """``{"base": bytes, "peak": bytes}`` of a fresh process recording ``steps`` steps with ``mode``."""
    path = out_dir / f"rss-{mode}-{steps}.npz"
    try:
        out = subprocess.run(
            [sys.executable, "-c", _SNIPPET, mode, str(num_envs), str(steps), str(path)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    finally:
        path.unlink(missing_ok=True)
    return json.loads(out.strip().splitlines()[-1])


def rss_vs_length(out_dir: Path, *, num_envs: int, short: int, long: int, original: bool = True) -> list[Row]:
    """Peak RSS at ``short`` and ``long`` steps; the ratio must stay near 1 for rollrec."""
    if not Path("/proc/self/status").exists():
        from rollrec.bench.measure import skipped

        return [skipped(SECTION, "peak RSS", "no /proc/self/status on this system")]
    rows = []
    for mode in ("rollrec", "original") if original else ("rollrec",):
        a = peak_rss(mode, num_envs, short, out_dir)
        b = peak_rss(mode, num_envs, long, out_dir)
        mib = 1 << 20
        rows.append(
            Row(
                SECTION,
                f"{mode}: peak RSS at T={long} vs T={short}, N={num_envs}",
                b["peak"] / mib,
                "MiB",
                f"T={short}",
                a["peak"] / mib,
                ratio=b["peak"] / a["peak"],
                ratio_means=f"peak(T={long}) / peak(T={short})",
                target=("<=", 1.1) if mode == "rollrec" else None,
                note=f"{(long - short) * num_envs * 1218 / mib:.0f} MiB more data; interpreter+workload {a['base'] / mib:.0f} MiB",
                params={"N": num_envs, "short": short, "long": long},
            )
        )
    return rows

"""Without the camera extra (PyAV, zstandard), recording a camera fails at once with the line that
installs it (not on the writer thread), and the rest of rollrec does not need them."""

from __future__ import annotations

import subprocess
import sys
import textwrap

CHILD = textwrap.dedent(
    """
    import sys
    class Missing:
        def find_spec(self, name, path=None, target=None):
            if name in ("av", "zstandard"):
                raise ImportError(f"No module named {name!r}")
    sys.meta_path.insert(0, Missing())
    import numpy as np, rollrec
    from rollrec.engine import Recorder
    rec = Recorder(sys.argv[1], 2)
    step = dict(obs=np.zeros((2, 1), np.float32), act=np.zeros((2, 1), np.float32), rew=np.zeros(2, np.float32),
                done=np.zeros(2, bool))
    try:
        rec.record(**step, images={"front": np.zeros((2, 4, 4, 3), np.uint8)})
    except ImportError as exc:
        print("ImportError:", exc)
    rec2 = Recorder(sys.argv[1] + "2.npz", 2)
    rec2.record(**step)  # no camera: no need of them
    print(rec2.close().name)
    """
)


def test_a_missing_extra_is_one_line_naming_it(tmp_path):
    out = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path / "r.npz")], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    assert "ImportError: camera images need PyAV" in out and "pip install 'rollrec[camera]'" in out
    assert out.strip().endswith("r.npz2.npz")

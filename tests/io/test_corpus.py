"""Replay every file of ``corpus/`` (see ``corpus/CORPUS.txt``) in a child process: each must give
its listed outcome, and none may crash the process, hang, or run the pickle it carries."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

CORPUS = Path(__file__).parent / "corpus"
REPO = Path(__file__).resolve().parents[2]


def _manifest() -> dict[str, tuple[str, str]]:
    out = {}
    for line in (CORPUS / "CORPUS.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, expect, what = (part.strip() for part in line.split("|", 2))
            out[name] = (expect, what)
    return out


def test_every_corpus_file_is_listed_and_small():
    listed = set(_manifest())
    present = {p.name for p in CORPUS.glob("*.npz")}
    assert listed == present, (sorted(listed - present), sorted(present - listed))
    assert all((CORPUS / name).stat().st_size < 128 << 10 for name in present)


def test_corpus_replays_to_its_expected_outcome(tmp_path):
    manifest = _manifest()
    files = [str(CORPUS / name) for name in sorted(manifest)]
    done = subprocess.run([sys.executable, str(CORPUS / "replay.py"), *files], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)}, check=False)
    assert done.returncode == 0, done.stderr[-3000:]  # a crash (signal) or an unexpected exception
    results = {Path(d["file"]).name: d for d in map(json.loads, done.stdout.splitlines())}
    assert set(results) == set(manifest)
    for name, (expect, what) in manifest.items():
        got = results[name]
        if expect == "ok":
            assert got["outcome"] == "ok", (name, what, got["message"])
        else:
            assert got["outcome"] == "refused" and expect in got["message"], (name, what, got["message"])
    assert not (tmp_path / "rollrec-corpus-pwned").exists()  # the legacy file's pickle never ran

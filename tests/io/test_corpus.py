"""Replay every file of ``corpus/`` (see ``corpus/CORPUS.txt``) in a child process: each must give
its listed outcome, and none may crash the process, hang, or run the pickle it carries. Entries
ending in ``/`` are directories: sharded rollouts."""

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


def _entries() -> set[str]:
    """The corpus: ``*.npz`` files, and directories (sharded rollouts) listed with a trailing ``/``."""
    return {p.name for p in CORPUS.glob("*.npz")} | {p.name + "/" for p in CORPUS.iterdir()
                                                     if p.is_dir() and p.name != "__pycache__"}


def test_every_corpus_file_is_listed_and_small():
    listed = set(_manifest())
    present = _entries()
    assert listed == present, (sorted(listed - present), sorted(present - listed))
    files = [p for name in present for p in ((CORPUS / name).iterdir() if name.endswith("/") else [CORPUS / name])]
    assert all(p.stat().st_size < 128 << 10 for p in files)


def test_corpus_replays_to_its_expected_outcome(tmp_path):
    manifest = _manifest()
    files = [str(CORPUS / name.rstrip("/")) for name in sorted(manifest)]
    done = subprocess.run([sys.executable, str(CORPUS / "replay.py"), *files], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)}, check=False)
    assert done.returncode == 0, done.stderr[-3000:]  # a crash (signal) or an unexpected exception
    results = {Path(d["file"]).name + ("/" if Path(d["file"]).is_dir() else ""): d
               for d in map(json.loads, done.stdout.splitlines())}
    assert set(results) == set(manifest)
    for name, (expect, what) in manifest.items():
        got = results[name]
        if expect == "ok":
            assert got["outcome"] == "ok", (name, what, got["message"])
        else:
            assert got["outcome"] == "refused" and expect in got["message"], (name, what, got["message"])
    assert not (tmp_path / "rollrec-corpus-pwned").exists()  # the legacy file's pickle never ran

"""Exports are written under a temporary name beside the output and renamed into place when complete.

An interrupted or failed export leaves no output and no temporary behind (the temporary is removed
on the way out); readers never see a half-written dataset under the name they asked for. An
existing output is an error unless ``overwrite`` is set; then the finished export replaces it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rollrec._npz.files import fsync_dir


def temporary_name(out: Path) -> Path:
    """The hidden temporary beside ``out`` that an export writes before it is renamed to ``out``."""
    return out.with_name(f".{out.name}.partial-{os.getpid()}")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()


@contextmanager
def staged_output(out: str | os.PathLike, *, directory: bool, overwrite: bool = False) -> Iterator[Path]:
    """Yield the temporary path to write (an empty directory when ``directory``); on a clean exit
    rename it to ``out``, on any exception remove it and re-raise.

    FileExistsError (before anything is written) when ``out`` exists and not ``overwrite``.
    """
    out = Path(out)
    if (out.exists() or out.is_symlink()) and not overwrite:
        raise FileExistsError(f"{out}: already exists (pass --overwrite / overwrite=True to replace it)")
    if out.is_dir() != directory and out.exists():
        what = "a directory" if out.is_dir() else "a file"
        raise FileExistsError(f"{out}: is {what}; the export writes {'a directory' if directory else 'a file'} there")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(out)
    _remove(tmp)
    if directory:
        tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        _remove(tmp)
        raise
    if directory and out.exists():
        old = out.with_name(f".{out.name}.replaced-{os.getpid()}")
        os.rename(out, old)
        os.rename(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out)
    fsync_dir(str(out))


__all__ = ["staged_output", "temporary_name"]

"""Rewrite a stored ``.npz`` as a deflated one (a second pass over the data, member by member)."""

from __future__ import annotations

import os
import zipfile

from rollrec._npz import faults
from rollrec._npz.files import create_exclusive


def compress_npz(src: str, dst: str, *, sync: bool = True) -> None:
    """Rewrite the stored npz ``src`` as a deflated one at ``dst`` (a second pass over the data).

    ``dst`` is created exclusively and (with ``sync``) synced to disk before this returns.
    """
    fd = create_exclusive(dst, replace_stale=True)
    with os.fdopen(fd, "w+b") as raw:
        with zipfile.ZipFile(src) as zin, zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as zout:
            for info in zin.infolist():
                with zin.open(info) as fin, zout.open(info.filename, "w", force_zip64=info.file_size > 1 << 31) as fout:
                    while chunk := fin.read(16 << 20):
                        fout.write(chunk)
                faults.point("compress.member")
        raw.flush()
        if sync:
            os.fsync(raw.fileno())


__all__ = ["compress_npz"]

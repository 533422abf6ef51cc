"""Helpers to build damaged and hostile rollout files from real small ones (`craft` fixture).

Each helper edits the bytes of a valid file the way a broken disk, a truncated copy or an
adversary would: zip fields (method, flags, version, CRC, sizes), npy header text, the ``meta``
JSON, member data. Offsets come from the zip structures themselves (parsed here with `zipfile`
and `struct`, independently of `rollrec.io`), so the tests check the reader against the spec.
"""

from __future__ import annotations

import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rollrec.format.meta import encode_meta, make_meta

_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")
_LOCAL = struct.Struct("<IHHHHHIIIHH")


class Craft:
    """Namespace of file-crafting helpers (see the module docstring)."""

    @staticmethod
    def arrays_with_meta(fields: dict[str, Any], meta: dict[str, Any] | str) -> dict[str, np.ndarray]:
        """``fields`` as arrays plus a ``meta`` member holding ``meta`` (a dict, or raw text)."""
        arrays = {k: np.asarray(v) for k, v in fields.items()}
        arrays["meta"] = np.array(meta) if isinstance(meta, str) else encode_meta(meta)
        return arrays

    @staticmethod
    def meta_for(fields: dict[str, Any], **overrides: Any) -> dict[str, Any]:
        T, N = np.asarray(fields["obs"]).shape[:2]
        meta = make_meta(num_steps=T, num_envs=N, dt=0.02)
        for key, value in overrides.items():
            if value is Craft.DELETE:
                meta.pop(key, None)
            else:
                meta[key] = value
        return meta

    DELETE = object()  # as an override in `meta_for`: remove the key

    @staticmethod
    def savez(path: Path, arrays: dict[str, np.ndarray], *, compress: bool = False) -> Path:
        (np.savez_compressed if compress else np.savez)(path, **arrays)
        return Path(path)

    @staticmethod
    def entries(path: Path) -> dict[str, dict[str, int]]:
        """``{member name: {cd, local, data}}``: offsets of its central entry, local header and data stream."""
        raw = Path(path).read_bytes()
        out: dict[str, dict[str, int]] = {}
        with zipfile.ZipFile(path) as zf:
            cd_start = zf.start_dir
            for info in zf.infolist():
                out[info.filename] = {"local": info.header_offset}
            p = cd_start
            for info in zf.infolist():
                assert raw[p : p + 4] == b"PK\x01\x02"
                fields = _CENTRAL.unpack_from(raw, p)
                name_len, extra_len, comment_len = fields[10], fields[11], fields[12]
                out[info.filename]["cd"] = p
                p += _CENTRAL.size + name_len + extra_len + comment_len
            for info in zf.infolist():
                loc = info.header_offset
                name_len, extra_len = _LOCAL.unpack_from(raw, loc)[-2:]
                out[info.filename]["data"] = loc + _LOCAL.size + name_len + extra_len
                out[info.filename]["compress_size"] = info.compress_size
        return out

    @staticmethod
    def patch(path: Path, offset: int, data: bytes) -> Path:
        with open(path, "r+b") as f:
            f.seek(offset)
            f.write(data)
        return Path(path)

    @classmethod
    def set_central(cls, path: Path, member: str, field: str, value: int) -> Path:
        """Overwrite one field of ``member``'s central directory entry (and its local header's twin)."""
        e = cls.entries(path)[member]
        cd_fields = {"version_needed": (6, "<H"), "flags": (8, "<H"), "method": (10, "<H"), "crc": (16, "<I"),
                     "compress_size": (20, "<I"), "file_size": (24, "<I"), "header_offset": (42, "<I")}
        local_fields = {"version_needed": (4, "<H"), "flags": (6, "<H"), "method": (8, "<H"), "crc": (14, "<I")}
        off, fmt = cd_fields[field]
        cls.patch(path, e["cd"] + off, struct.pack(fmt, value))
        if field in local_fields:
            off, fmt = local_fields[field]
            cls.patch(path, e["local"] + off, struct.pack(fmt, value))
        return Path(path)

    @classmethod
    def npy_header_span(cls, path: Path, member: str) -> tuple[int, int]:
        """``(offset, length)`` of the header dict text of stored ``member``."""
        data = cls.entries(path)[member]["data"]
        raw = Path(path).read_bytes()
        assert raw[data : data + 6] == b"\x93NUMPY", member
        if raw[data + 6] == 1:
            (hlen,) = struct.unpack_from("<H", raw, data + 8)
            return data + 10, hlen
        (hlen,) = struct.unpack_from("<I", raw, data + 8)
        return data + 12, hlen

    @classmethod
    def replace_npy_header(cls, path: Path, member: str, text: str) -> Path:
        """Put ``text`` (padded with spaces to the same length) in place of stored ``member``'s header dict."""
        off, hlen = cls.npy_header_span(path, member)
        body = text.encode("latin1")
        assert len(body) < hlen, "new header text too long"
        return cls.patch(path, off, body + b" " * (hlen - 1 - len(body)) + b"\n")

    @staticmethod
    def deflate_bomb(nbytes: int) -> tuple[bytes, int]:
        """A raw deflate stream of ``nbytes`` zero bytes, built from one repeated block (fast, tiny),
        and its CRC-32."""
        block = 16 << 20
        assert nbytes % block == 0
        c = zlib.compressobj(9, zlib.DEFLATED, -15)
        piece = c.compress(bytes(block)) + c.flush(zlib.Z_FULL_FLUSH)
        tail = c.flush(zlib.Z_FINISH)
        crc = 0
        zero_crc = zlib.crc32(bytes(block))
        from rollrec._npz.zip_records import crc32_combine

        for _ in range(nbytes // block):
            crc = crc32_combine(crc, zero_crc, block)
        return piece * (nbytes // block) + tail, crc

    @staticmethod
    def zip_with(path: Path, members: dict[str, tuple[bytes, int, int, int]]) -> Path:
        """A zip of raw members ``{name: (data, method, crc, file_size)}`` (data already compressed)."""
        body: list[bytes] = []
        central: list[bytes] = []
        offset = 0
        for name, (data, method, crc, file_size) in members.items():
            n = name.encode()
            zip64 = len(data) >= 0xFFFFFFFF or file_size >= 0xFFFFFFFF
            extra = struct.pack("<HHQQ", 1, 16, file_size, len(data)) if zip64 else b""
            csz, usz = (0xFFFFFFFF, 0xFFFFFFFF) if zip64 else (len(data), file_size)
            local = _LOCAL.pack(0x04034B50, 45, 0, method, 0, 0, crc, csz, usz, len(n), len(extra)) + n + extra
            central.append(_CENTRAL.pack(0x02014B50, 45, 45, 0, method, 0, 0, crc, csz, usz, len(n), len(extra), 0, 0,
                                         0, 0, offset) + n + extra)
            body += [local, data]
            offset += len(local) + len(data)
        cd = b"".join(central)
        eocd = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(cd), offset, 0)
        Path(path).write_bytes(b"".join(body) + cd + eocd)
        return Path(path)

    @staticmethod
    def npy_bytes(arr: np.ndarray) -> bytes:
        import io

        buf = io.BytesIO()
        np.save(buf, arr, allow_pickle=False)
        return buf.getvalue()

    @staticmethod
    def npy_header_bytes(shape: tuple[int, ...], dtype: str) -> bytes:
        header = repr({"descr": dtype, "fortran_order": False, "shape": shape}).encode("latin1")
        total = 10 + len(header) + 1
        pad = (-total) % 64
        return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header) + pad + 1) + header + b" " * pad + b"\n"



CORPUS = Path(__file__).parent / "corpus"


@pytest.fixture(scope="session")
def replay():
    """The ``corpus/replay.py`` module: ``touch(path)`` applies the loader's property to a file."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("rollrec_corpus_replay", CORPUS / "replay.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def craft() -> type[Craft]:
    """The `Craft` helpers."""
    return Craft


"""Fuzz the loader with hypothesis: crafted, random, truncated and bit-flipped files built from
real small rollouts. The property (`corpus/replay.py`'s ``touch``): ``load`` + every member +
``env()`` + the episode helpers + ``info --verify`` either succeed or raise `RolloutFormatError`
(one line naming the file); never another exception, and never a hang (a 20 s alarm per file).

The seeds include format-v2 files (one step in 2; detail envs, or captured windows), whose
episode index and v2 ``meta`` entries are fuzzed too, and a sharded rollout (a directory of two
shard files), whose ``manifest.json`` is fuzzed (the property holds for the directory).

CI runs a fixed, derandomised set (3,800 cases, about a minute, see `EXAMPLES`);
``ROLLREC_FUZZ_SCALE=20 ROLLREC_FUZZ_RANDOM=1 pytest tests/io/test_fuzz_loader.py`` explores
further with fresh random cases. A failure is a crasher: add its file to ``corpus/`` (hypothesis
prints the smallest case it found) with a line in ``corpus/CORPUS.txt``.
"""

from __future__ import annotations

import json
import os
import signal
import struct
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rollrec
from rollrec.format.meta import encode_meta, make_meta

SCALE = float(os.environ.get("ROLLREC_FUZZ_SCALE", "1"))
EXAMPLES = {  # per test; the sum (3,800) is what CI tries
    "bit_flips": 600,
    "truncation": 300,
    "overwrite": 400,
    "zip_fields": 600,
    "npy_headers": 450,
    "meta": 450,
    "random_bytes": 200,
    "v2_index": 300,
    "v2_meta": 200,
    "manifest": 300,
}
FUZZ = settings(
    deadline=None,
    database=None,
    derandomize=not os.environ.get("ROLLREC_FUZZ_RANDOM"),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)


def fuzz(name: str) -> Callable:
    return settings(FUZZ, max_examples=max(1, int(EXAMPLES[name] * SCALE)))


# ---- seeds: real small rollouts ----------------------------------------------------------------
def _fields(T: int, N: int, *, L: int | None = 2, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    q = rng.normal(size=(T, N, 4)).astype(np.float32)
    done = rng.random((T, N)) < 0.3
    fields = {
        "obs": rng.normal(size=(T, N, 3)).astype(np.float32),
        "act": rng.normal(size=(T, N, 2)).astype(np.float32),
        "rew": rng.normal(size=(T, N)).astype(np.float32),
        "done": done,
        "truncated": done & (rng.random((T, N)) < 0.5),
        "base_pos": rng.normal(size=(T, N, 3)).astype(np.float32),
        "base_quat": q / np.maximum(np.linalg.norm(q, axis=-1, keepdims=True), 1e-6),
        "rew_terms": rng.normal(size=(T, N, 2)).astype(np.float32),
        "rew_term_names": np.array(["alive", "speed"]),
        "cam": rng.integers(0, 255, size=(T, N, 2, 2), dtype=np.uint8),
    }
    if L:
        fields["link_pos"] = rng.normal(size=(T, N, L, 3)).astype(np.float32)
        fields["link_quat"] = np.repeat(fields["base_quat"][:, :, None], L, axis=2)
        fields["link_names"] = np.array([f"l{i}" for i in range(L)])
    return fields


def _build_seeds(root: Path) -> dict[str, bytes]:
    out = {}
    specs = {
        "stored": {"T": 5, "N": 3},
        "deflated": {"T": 5, "N": 3, "compress": True},
        "empty": {"T": 0, "N": 2},
        "one_env": {"T": 7, "N": 1, "L": None},
    }
    for name, spec in specs.items():
        compress = spec.pop("compress", False)
        path = rollrec.save(root / f"{name}.npz", _fields(**spec), dt=0.05, compress=compress,
                            meta={"link_parents": [-1, 0]} if spec.get("L", 2) else None)
        out[name] = path.read_bytes()
    # Written by plain numpy: unaligned members, zip64 local extras.
    fields = _fields(4, 2)
    arrays = {k: np.asarray(v) for k, v in fields.items()}
    arrays["meta"] = encode_meta(make_meta(num_steps=4, num_envs=2, dt=0.1, extras=["cam"]))
    np.savez(root / "numpy.npz", **arrays)
    out["numpy"] = (root / "numpy.npz").read_bytes()
    for name, options in V2_SEEDS.items():
        out[name] = _record_v2(root / f"{name}.npz", options).read_bytes()
    return out


#: Format-v2 seeds: `Recorder` volume options.
V2_SEEDS = {"v2_detail": {"every": 2, "envs": [1]}, "v2_windows": {"every": 2, "capture": 1e9, "window": 2}}


def _record_v2(path: Path, options: dict) -> Path:
    """A small v2 file recorded by the `Recorder` (episodes end at steps 3 and 7 of every env)."""
    import torch

    from rollrec.engine import Recorder

    rng = np.random.default_rng(1)
    with Recorder(path, 3, segment_steps=4, **options) as rec:
        for t in range(11):
            done = torch.from_numpy((rng.random(3) < 0.3) | (t in (3, 7)))
            rec.record(obs=torch.from_numpy(rng.normal(size=(3, 3)).astype(np.float32)), act=torch.zeros(3, 2),
                       rew=torch.from_numpy(rng.normal(size=3).astype(np.float32)), done=done,
                       truncated=done & (t == 7), base_pos=torch.zeros(3, 3), base_quat=torch.ones(3, 4),
                       reward_terms={"a": torch.ones(3)})
    return path


@pytest.fixture(scope="module")
def seeds(tmp_path_factory) -> dict[str, bytes]:
    return _build_seeds(tmp_path_factory.mktemp("seeds"))


@pytest.fixture(scope="module")
def target(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz") / "case.npz"


@contextmanager
def _alarm(seconds: float) -> Iterator[None]:
    def hung(signum, frame):
        raise TimeoutError(f"reading the file took more than {seconds} s")

    old = signal.signal(signal.SIGALRM, hung)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def check(target: Path, data: bytes, touch) -> str:
    """Write ``data`` to ``target`` and apply the property; returns the outcome."""
    target.write_bytes(data)
    with _alarm(20):
        outcome, _ = touch(str(target))
    return outcome


# ---- mutations (plain functions of the bytes, so a crasher is easy to rebuild) ----------------
def flip_bits(data: bytes, flips: list[tuple[int, int]]) -> bytes:
    buf = bytearray(data)
    for pos, bit in flips:
        buf[pos % len(buf)] ^= 1 << bit
    return bytes(buf)


def overwrite(data: bytes, pos: int, chunk: bytes) -> bytes:
    pos %= len(data)
    return data[:pos] + chunk + data[pos + len(chunk):]


def zip_structures(data: bytes) -> list[tuple[int, str]]:
    """``(offset, kind)`` of every local header, central entry and end record in ``data``."""
    out = []
    for sig, kind in ((b"PK\x03\x04", "local"), (b"PK\x01\x02", "central"), (b"PK\x05\x06", "eocd"),
                      (b"PK\x06\x06", "eocd64"), (b"PK\x06\x07", "locator")):
        start = 0
        while (pos := data.find(sig, start)) >= 0:
            out.append((pos, kind))
            start = pos + 1
    return sorted(out)


#: Fields of each structure: (offset, struct format).
ZIP_FIELDS = {
    "local": [(4, "<H"), (6, "<H"), (8, "<H"), (14, "<I"), (18, "<I"), (22, "<I"), (26, "<H"), (28, "<H")],
    "central": [(6, "<H"), (8, "<H"), (10, "<H"), (16, "<I"), (20, "<I"), (24, "<I"), (28, "<H"), (30, "<H"),
                (32, "<H"), (34, "<H"), (42, "<I")],
    "eocd": [(4, "<H"), (6, "<H"), (8, "<H"), (10, "<H"), (12, "<I"), (16, "<I"), (20, "<H")],
    "eocd64": [(24, "<Q"), (32, "<Q"), (40, "<Q"), (48, "<Q")],
    "locator": [(4, "<I"), (8, "<Q"), (16, "<I")],
}


def set_zip_field(data: bytes, structure: int, field: int, value: int) -> bytes:
    structs = zip_structures(data)
    if not structs:
        return data
    pos, kind = structs[structure % len(structs)]
    off, fmt = ZIP_FIELDS[kind][field % len(ZIP_FIELDS[kind])]
    value &= (1 << (8 * struct.calcsize(fmt))) - 1
    return overwrite(data, pos + off, struct.pack(fmt, value)) if pos + off + struct.calcsize(fmt) <= len(data) else data


def npy_headers(data: bytes) -> list[tuple[int, int]]:
    """``(offset, length)`` of the header text of every stored npy member."""
    out, start = [], 0
    while (pos := data.find(b"\x93NUMPY", start)) >= 0:
        start = pos + 1
        if pos + 10 > len(data):
            break
        if data[pos + 6] == 1:
            out.append((pos + 10, struct.unpack_from("<H", data, pos + 8)[0]))
        elif pos + 12 <= len(data):
            out.append((pos + 12, struct.unpack_from("<I", data, pos + 8)[0]))
    return out


def set_npy_header(data: bytes, which: int, text: str) -> bytes:
    headers = npy_headers(data)
    if not headers:
        return data
    off, hlen = headers[which % len(headers)]
    body = text.encode("latin1", "replace")[: max(hlen - 1, 0)]
    return overwrite(data, off, body + b" " * (hlen - 1 - len(body)) + b"\n") if hlen else data


def with_meta(seed: bytes, meta_text: str, tmp: Path) -> bytes:
    """``seed`` rewritten by numpy with ``meta`` replaced by ``meta_text``."""
    src = tmp.with_suffix(".src.npz")
    src.write_bytes(seed)
    with np.load(src) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["meta"] = np.array(meta_text)
    np.savez(src, **arrays)
    return src.read_bytes()


# ---- strategies ---------------------------------------------------------------------------------
SEED_NAMES = st.sampled_from(["stored", "deflated", "empty", "one_env", "numpy", *V2_SEEDS])
INTERESTING = st.one_of(
    st.sampled_from([0, 1, 2, 8, 14, 20, 45, 63, 64, 99, 0x7F, 0xFF, 0x800, 0xFFFF, 0x10000, 0x7FFFFFFF,
                     0xFFFFFFFF, 0xFFFFFFFFFFFFFFFF, 1 << 40]),
    st.integers(0, 1 << 64),
)
SHAPES = st.lists(st.one_of(st.integers(-3, 12), st.sampled_from([1 << 20, 1 << 31, 1 << 62, 1 << 70])), max_size=6)
DESCRS = st.sampled_from(["<f4", ">f8", "|b1", "<i8", "<u2", "<U5", "|S3", "|O", "<c8", "|V4", "<M8[s]", "<f2",
                          "float32", "<U0", "<U99999999999", "", "x"])


@st.composite
def npy_header_texts(draw) -> str:
    if draw(st.booleans()):
        return draw(st.text(max_size=60))
    shape = tuple(draw(SHAPES))
    return repr({"descr": draw(DESCRS), "fortran_order": draw(st.sampled_from([False, True, 0, "no"])),
                 "shape": shape if draw(st.integers(0, 9)) else list(shape)})


JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(1 << 70), 1 << 70), st.floats(allow_nan=True),
              st.text(max_size=8)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)),
    max_leaves=12,
)
META_KEYS = st.sampled_from(["dt", "num_steps", "num_envs", "format_version", "quat_order", "link_parents",
                             "env_name", "extras", "legacy", "reward_terms_are_env_means", "video", "x"])


@st.composite
def meta_texts(draw) -> str:
    meta = make_meta(num_steps=5, num_envs=3, dt=0.05)
    for _ in range(draw(st.integers(1, 3))):
        key = draw(META_KEYS)
        if draw(st.integers(0, 5)) == 0:
            meta.pop(key, None)
        else:
            meta[key] = draw(JSON)
    text = json.dumps(meta)
    if draw(st.integers(0, 7)) == 0:  # damaged JSON text
        cut = draw(st.integers(0, len(text)))
        text = text[:cut] + draw(st.text(max_size=4)) + text[cut + 1:]
    return text


# ---- the fuzz tests -----------------------------------------------------------------------------
@pytest.mark.slow
@fuzz("bit_flips")
@given(seed=SEED_NAMES, flips=st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 7)), min_size=1, max_size=8))
def test_bit_flips(seeds, target, replay, seed, flips):
    check(target, flip_bits(seeds[seed], flips), replay.touch)


@fuzz("truncation")
@given(seed=SEED_NAMES, keep=st.floats(0, 1), extra=st.binary(max_size=8))
def test_truncation(seeds, target, replay, seed, keep, extra):
    data = seeds[seed]
    check(target, data[: int(len(data) * keep)] + extra, replay.touch)


@pytest.mark.slow
@fuzz("overwrite")
@given(seed=SEED_NAMES, pos=st.integers(0, 1 << 20), chunk=st.binary(min_size=1, max_size=64))
def test_overwritten_bytes(seeds, target, replay, seed, pos, chunk):
    check(target, overwrite(seeds[seed], pos, chunk), replay.touch)


@pytest.mark.slow
@fuzz("zip_fields")
@given(seed=SEED_NAMES, edits=st.lists(st.tuples(st.integers(0, 200), st.integers(0, 20), INTERESTING),
                                       min_size=1, max_size=3))
def test_zip_fields(seeds, target, replay, seed, edits):
    data = seeds[seed]
    for structure, field, value in edits:
        data = set_zip_field(data, structure, field, value)
    check(target, data, replay.touch)


@pytest.mark.slow
@fuzz("npy_headers")
@given(seed=st.sampled_from(["stored", "empty", "one_env", "numpy"]), which=st.integers(0, 30),
       text=npy_header_texts())
def test_npy_headers(seeds, target, replay, seed, which, text):
    check(target, set_npy_header(seeds[seed], which, text), replay.touch)


@pytest.mark.slow
@fuzz("meta")
@given(seed=st.sampled_from(["stored", "deflated"]), text=meta_texts())
def test_meta(seeds, target, replay, seed, text):
    check(target, with_meta(seeds[seed], text, target), replay.touch)


def with_members(seed: bytes, change: Callable[[dict[str, np.ndarray]], None], tmp: Path) -> bytes:
    """``seed`` rewritten by numpy after ``change`` edited its members (a dict of arrays)."""
    src = tmp.with_suffix(".src.npz")
    src.write_bytes(seed)
    with np.load(src) as npz:
        arrays = {k: npz[k] for k in npz.files}
    change(arrays)
    np.savez(src, **arrays)
    return src.read_bytes()


INT64 = st.one_of(st.sampled_from([-(1 << 63), -(1 << 62), -2, -1, 0, 1, 2, 3, 5, 7, 11, (1 << 31), (1 << 62),
                                   (1 << 63) - 1]), st.integers(-(1 << 63), (1 << 63) - 1))


@fuzz("v2_index")
@given(seed=st.sampled_from(list(V2_SEEDS)),
       edits=st.lists(st.tuples(st.integers(0, 1 << 10), st.integers(0, 6), INT64), min_size=1, max_size=4))
def test_v2_episode_index(seeds, target, replay, seed, edits):
    def change(arrays):
        table = arrays["episodes"]
        for row, col, value in edits:
            if len(table):
                table[row % len(table), col] = value

    check(target, with_members(seeds[seed], change, target), replay.touch)


V2_META_KEYS = st.sampled_from(["every", "env_ids", "windows", "recorded_steps", "episode_columns", "num_steps",
                                "num_envs", "format_version"])
V2_VALUES = st.one_of(JSON, INT64, st.lists(INT64, max_size=4), st.dictionaries(st.sampled_from(["obs", "act", "rew"]),
                      st.lists(INT64, max_size=3), max_size=2),
                      st.fixed_dictionaries({"members": st.lists(st.sampled_from(["obs", "act", "x"]), max_size=2),
                                             "window": INT64}))


@fuzz("v2_meta")
@given(seed=st.sampled_from(list(V2_SEEDS)), edits=st.lists(st.tuples(V2_META_KEYS, V2_VALUES), min_size=1, max_size=3))
def test_v2_meta(seeds, target, replay, seed, edits):
    def change(arrays):
        meta = json.loads(str(arrays["meta"][()]))
        for key, value in edits:
            meta[key] = value
        arrays["meta"] = np.array(json.dumps(meta))

    check(target, with_members(seeds[seed], change, target), replay.touch)


@pytest.fixture(scope="module")
def sharded(tmp_path_factory) -> tuple[Path, dict]:
    """A sharded rollout of 2 shards (3 and 2 envs) and its manifest document."""
    from rollrec.format.manifest import Manifest, ShardEntry
    from rollrec.io.sharded.manifest import write_manifest

    directory = tmp_path_factory.mktemp("sharded") / "run"
    directory.mkdir()
    fields = _fields(5, 5, L=None)
    layout = [[0, 3], [3, 2]]
    for rank, (o, n) in enumerate(layout):
        part = {k: (v if k == "rew_term_names" else v[:, o : o + n]) for k, v in fields.items()}
        shard = {"run_id": "f00d", "rank": rank, "world_size": 2, "env_offset": o, "num_envs": n, "total_envs": 5,
                 "layout": layout}
        rollrec.save(directory / f"rank-{rank:05d}.npz", part, dt=0.05, meta={"shard": shard, "extras": ["cam"]})
    entries = [ShardEntry(r, f"rank-{r:05d}.npz", o, n, num_steps=5, status="complete") for r, (o, n) in enumerate(layout)]
    write_manifest(directory, Manifest(run_id="f00d", world_size=2, num_envs=5, dt=0.05, shards=entries, state="complete",
                                       num_steps=5))
    return directory, json.loads((directory / "manifest.json").read_text())


MANIFEST_KEYS = st.sampled_from(["run_id", "state", "world_size", "num_envs", "num_steps", "dt", "env_name", "fields",
                                 "shards", "format_version"])
SHARD_KEYS = st.sampled_from(["rank", "file", "env_offset", "num_envs", "num_steps", "status", "host", "note"])
SHARD_VALUES = st.one_of(JSON, INT64, st.sampled_from(["manifest.json", ".", "..", "rank-00001.npz", "rank-00000.npz",
                                                       "rank-00007.npz", "a/../rank-00000.npz", "/etc/passwd", ""]))


@fuzz("manifest")
@given(top=st.lists(st.tuples(MANIFEST_KEYS, st.one_of(JSON, INT64)), max_size=2),
       entries=st.lists(st.tuples(st.integers(0, 1), SHARD_KEYS, SHARD_VALUES), max_size=3),
       drop=st.sampled_from([(), (0,), (1,)]))
def test_manifest(sharded, replay, top, entries, drop):
    import copy

    directory, doc = sharded
    doc = copy.deepcopy(doc)
    for key, value in top:
        doc[key] = value
    for i, key, value in entries:
        if isinstance(doc.get("shards"), list) and i < len(doc["shards"]) and isinstance(doc["shards"][i], dict):
            doc["shards"][i][key] = value
    (directory / "manifest.json").write_text(json.dumps(doc))
    hidden = [directory / f"rank-{r:05d}.npz" for r in drop]
    for p in hidden:
        p.rename(p.with_suffix(".hidden"))
    try:
        with _alarm(20):
            replay.touch(str(directory))
    finally:
        for p in hidden:
            p.with_suffix(".hidden").rename(p)


@fuzz("random_bytes")
@given(data=st.one_of(st.binary(max_size=300), st.binary(max_size=300).map(lambda b: b"PK\x03\x04" + b)))
def test_random_bytes(target, replay, data):
    check(target, data, replay.touch)


def test_seeds_are_valid(seeds, target, replay):
    for name, data in seeds.items():
        assert check(target, data, replay.touch) == "ok", name
    with zipfile.ZipFile(target.parent / "x.npz", "w") as zf:  # and a zip with nothing in it
        zf.writestr("readme.txt", "hi")
    assert replay.touch(str(target.parent / "x.npz"))[0] == "refused"

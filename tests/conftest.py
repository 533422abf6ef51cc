"""Fixtures shared by the whole suite: synthetic field dicts, walker recordings, legacy samples.

- `make_fields` returns a factory of v1 field dicts (random values, fixed seed).
- `record_walker` returns a function that records the built-in walker into a v1 file;
  `walker_rollout` is one such recording in the test's ``tmp_path``; `walker_runs` are recorded
  runs to compare (a policy, a perturbed one, other seeds, fewer envs), shared by the session.
- `member_data_offsets(path)` finds where each stored member's array data starts in the file.
- `volume_reference` is the naive reference of volume control (`tests/volume_reference.py`).
- `page_cache_bytes(path)` says how much of a file the page cache holds now (Linux ``mincore``).
- `kill_when_ready(code, *args)` runs ``python -c code args`` and SIGKILLs it once it prints
  ``ready``.
- `direct_dir` is the test's ``tmp_path`` where its file system takes ``O_DIRECT``; the test is
  skipped elsewhere.
- `legacy_dir` is a folder holding the original recorder's sample files (``LEGACY_SAMPLES``),
  written here by `write_legacy_rollout` in that recorder's layout (shared by the session).
- `camera_frames` is `tests/camera_frames.py` (pattern frames, the walker's rendered camera, PSNR);
  `walker_camera` the walker's camera over 48 steps of 4 envs at 128x128 (rendered once a session).
- `gif_frames(path)` decodes every frame of a GIF as ``[T, H, W, 3]`` uint8 RGB (Pillow).
- `cuda_standin` swaps a stand-in for ``torch.cuda`` (`tests/cuda_standin.py`: streams,
  events, devices, host registration, all logged; NOT a GPU) in for the test.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import struct
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
#: The sample files `legacy_dir` holds, by env count.
LEGACY_SAMPLES = {"legacy_rollout_n1.npz": 1, "legacy_rollout_n2.npz": 2}


def _make_fields(
    T: int = 6,
    N: int = 3,
    *,
    D: int = 5,
    A: int = 2,
    K: int = 3,
    L: int | None = None,
    extras: dict[str, tuple[tuple[int, ...], Any]] | None = None,
    done_every: int | None = None,
    float_dtype: Any = np.float32,
    seed: int = 0,
) -> dict[str, Any]:
    """A v1 field dict with ``T`` steps and ``N`` envs, values drawn from a fixed seed.

    ``L`` adds ``link_pos``/``link_quat``/``link_names`` for ``L`` links; ``extras`` maps extra
    member names to ``(trailing_shape, dtype)``. ``done_every`` sets ``done`` on every
    ``done_every``-th step of each env (staggered by env), else ``done`` is random (p=0.1).
    Quaternions are unit norm. ``truncated`` is a subset of ``done``.
    """
    rng = np.random.default_rng(seed)

    def quats(*shape: int) -> np.ndarray:
        q = rng.normal(size=(*shape, 4))
        return (q / np.linalg.norm(q, axis=-1, keepdims=True)).astype(float_dtype)

    if done_every is None:
        done = rng.random((T, N)) < 0.1
    else:
        done = ((np.arange(T)[:, None] + np.arange(N)[None, :]) % done_every) == done_every - 1
    fields: dict[str, Any] = {
        "obs": rng.normal(size=(T, N, D)).astype(float_dtype),
        "act": rng.uniform(-1, 1, size=(T, N, A)).astype(float_dtype),
        "rew": rng.normal(size=(T, N)).astype(float_dtype),
        "done": done,
        "truncated": done & (rng.random((T, N)) < 0.5),
        "base_pos": rng.normal(size=(T, N, 3)).astype(float_dtype),
        "base_quat": quats(T, N),
        "rew_terms": rng.normal(size=(T, N, K)).astype(np.float32),
        "rew_term_names": [f"term_{k}" for k in range(K)],
    }
    if L is not None:
        fields["link_pos"] = rng.normal(size=(T, N, L, 3)).astype(float_dtype)
        fields["link_quat"] = quats(T, N, L)
        fields["link_names"] = [f"link_{i}" for i in range(L)]
    for name, (trailing, dtype) in (extras or {}).items():
        dtype = np.dtype(dtype)
        if dtype == np.bool_:
            fields[name] = rng.random((T, N, *trailing)) < 0.5
        elif dtype.kind in "iu":
            info = np.iinfo(dtype)
            fields[name] = rng.integers(max(info.min, -1000), min(info.max, 1000), size=(T, N, *trailing), dtype=dtype)
        else:
            fields[name] = rng.normal(size=(T, N, *trailing)).astype(dtype)
    return fields


@pytest.fixture
def make_fields() -> Callable[..., dict[str, Any]]:
    """Factory of synthetic v1 field dicts: ``make_fields(T, N, L=4, extras={...})``."""
    return _make_fields


def _record_walker(
    path: str | Path,
    *,
    steps: int = 100,
    num_envs: int = 8,
    seed: int = 0,
    max_episode_steps: int = 60,
    links: bool = True,
    compress: bool = False,
) -> Path:
    """Record ``steps`` x ``num_envs`` of `WalkerEnv` driven by `GaitPolicy` into a v1 file.

    Poses are taken before each step, so they describe the state ``obs`` describes;
    ``done = terminated | truncated``; meta holds ``link_parents``. A short
    ``max_episode_steps`` makes truncations happen within the recording.
    """
    import torch

    import rollrec
    from rollrec.envs import GaitPolicy, WalkerEnv

    env = WalkerEnv(num_envs, seed=seed, max_episode_steps=max_episode_steps)
    policy = GaitPolicy()
    keys = ("obs", "act", "rew", "done", "truncated", "base_pos", "base_quat", "rew_terms", "link_pos", "link_quat")
    rec: dict[str, list[np.ndarray]] = {k: [] for k in keys}
    obs = env.reset()
    with torch.no_grad():
        for _ in range(steps):
            rec["obs"].append(obs.numpy().copy())
            rec["base_pos"].append(env.base_pos.numpy().copy())
            rec["base_quat"].append(env.base_quat.numpy())
            link_pos, link_quat = env.link_poses()
            rec["link_pos"].append(link_pos.numpy())
            rec["link_quat"].append(link_quat.numpy())
            act = policy(obs)
            obs, rew, terminated, truncated, info = env.step(act)
            rec["act"].append(act.numpy())
            rec["rew"].append(rew.numpy())
            rec["done"].append((terminated | truncated).numpy())
            rec["truncated"].append(truncated.numpy())
            terms = info["reward_terms"]
            rec["rew_terms"].append(torch.stack([terms[k] for k in WalkerEnv.reward_term_names], -1).numpy())
    fields: dict[str, Any] = {k: np.stack(v) for k, v in rec.items()}
    fields["rew_term_names"] = list(WalkerEnv.reward_term_names)
    meta: dict[str, Any] = {}
    if links:
        fields["link_names"] = list(WalkerEnv.link_names)
        meta["link_parents"] = list(WalkerEnv.link_parents)
    else:
        del fields["link_pos"], fields["link_quat"]
    return rollrec.save(path, fields, dt=env.dt, env_name=WalkerEnv.name, meta=meta, compress=compress)


@pytest.fixture
def record_walker() -> Callable[..., Path]:
    """``record_walker(path, steps=100, num_envs=8, ...)`` records the built-in walker to ``path``."""
    return _record_walker


@pytest.fixture
def walker_rollout(tmp_path: Path) -> Path:
    """A 100-step, 8-env walker rollout (seed 0) with link poses, in this test's ``tmp_path``."""
    return _record_walker(tmp_path / "walker.npz")


def write_legacy_rollout(path: str | Path, num_envs: int, *, steps: int = 120, seed: int = 0) -> Path:
    """Write ``path`` the way the original recorder (the ``extras/`` recorder of the
    ProtoMotions-Genesis fork) wrote its rollouts: one ``np.savez_compressed`` call with members
    ``obs, act, rew, done, truncated, info, base_pos, base_quat, link_names, link_pos, link_quat``.

    Its layout, as `rollrec.io.legacy` reads it: ``obs [T, N, 24]`` and ``act [T, N, 6]`` keep the
    env axis, every other per-env member has it **squeezed away** when ``N == 1`` (``rew [T]``,
    ``base_pos [T, 3]``, ``link_pos [T, 5, 3]``...); quaternions are unit, **w last** (xyzw);
    ``link_names`` is an object array of ``link_0..link_4``; ``info [T]`` is an object array (so
    pickled) of dicts ``{"reward_terms": {"raw/pose_rew_mean": float, "raw/vel_rew_mean": float,
    "raw/energy_rew_mean": float}}``: means over envs, not per env. Every env ends an episode
    after step 59 (``done[59]``); nothing is truncated. Values are synthetic (fixed ``seed``).
    """
    T, N, L = steps, num_envs, 5
    rng = np.random.default_rng(seed + num_envs)

    def quats(*shape: int) -> np.ndarray:
        q = rng.normal(size=(*shape, 4))
        return (q / np.linalg.norm(q, axis=-1, keepdims=True)).astype(np.float32)

    def squeeze(a: np.ndarray) -> np.ndarray:  # what the original did to per-env members of one env
        return a[:, 0] if N == 1 else a

    t_in_episode = np.arange(T) % 60
    done = np.zeros((T, N), bool)
    done[59] = True
    base_pos = np.zeros((T, N, 3), np.float32)
    base_pos[..., 0] = 0.01 * t_in_episode[:, None] * (1 + np.arange(N))[None, :]
    base_pos[..., 2] = np.where(t_in_episode[:, None] > 0, 0.5 + 0.1 * rng.random((T, N)), 0.0)
    link_pos = (base_pos[:, :, None, :] + 0.3 * rng.normal(size=(T, N, L, 3))).astype(np.float32)
    info = np.empty(T, dtype=object)
    for t in range(T):
        k = int(t_in_episode[t])
        info[t] = {"reward_terms": {"raw/pose_rew_mean": float(np.cos(0.1 * k) ** 2),
                                    "raw/vel_rew_mean": float(rng.random()) if k else 0.0,
                                    "raw/energy_rew_mean": -0.01 * k}}
    np.savez_compressed(
        path,
        obs=rng.normal(size=(T, N, 24)).astype(np.float32),
        act=rng.normal(size=(T, N, 6)).astype(np.float32),
        rew=squeeze(rng.normal(size=(T, N)).astype(np.float32)),
        done=squeeze(done),
        truncated=squeeze(np.zeros((T, N), bool)),
        info=info,
        base_pos=squeeze(base_pos),
        base_quat=squeeze(quats(T, N)),
        link_names=np.array([f"link_{i}" for i in range(L)], dtype=object),
        link_pos=squeeze(link_pos),
        link_quat=squeeze(quats(T, N, L)),
    )
    return Path(path)


@pytest.fixture(scope="session")
def legacy_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding the original recorder's sample files (`LEGACY_SAMPLES`, made by
    `write_legacy_rollout`; shared by the session: do not modify)."""
    folder = tmp_path_factory.mktemp("legacy")
    for name, num_envs in LEGACY_SAMPLES.items():
        write_legacy_rollout(folder / name, num_envs)
    return folder


def _member_data_offsets(path: str | Path) -> dict[str, int]:
    """Byte offset of each stored member's array data, read from the zip and npy headers.

    Independent of `rollrec.io.reader`, so tests can check the file against the spec.
    """
    offsets = {}
    with zipfile.ZipFile(path) as zf, open(path, "rb") as f:
        for info in zf.infolist():
            assert info.compress_type == zipfile.ZIP_STORED, f"{info.filename} is compressed"
            f.seek(info.header_offset)
            sig, *_, name_len, extra_len = struct.unpack("<IHHHHHIIIHH", f.read(30))
            assert sig == 0x04034B50, f"{info.filename}: no local header at {info.header_offset}"
            f.seek(info.header_offset + 30 + name_len + extra_len)
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                np.lib.format.read_array_header_1_0(f)
            else:
                np.lib.format.read_array_header_2_0(f)
            offsets[info.filename.removesuffix(".npy")] = f.tell()
    return offsets


@pytest.fixture
def member_data_offsets() -> Callable[[str | Path], dict[str, int]]:
    """``member_data_offsets(path) -> {member: offset of its array data}`` for a stored npz."""
    return _member_data_offsets


def _page_cache_bytes(path: str | Path) -> int:
    """Bytes of ``path`` held in the page cache now (``mincore`` over a private mapping of it)."""
    size = os.path.getsize(path)
    if size == 0:
        return 0
    with open(path, "rb") as f:
        mm = mmap.mmap(f.fileno(), size, access=mmap.ACCESS_COPY)
    try:
        base = ctypes.c_char.from_buffer(mm)
        vec = (ctypes.c_ubyte * (-(-size // mmap.PAGESIZE)))()
        libc = ctypes.CDLL(None, use_errno=True)
        rc = libc.mincore(ctypes.c_void_p(ctypes.addressof(base)), ctypes.c_size_t(size), vec)
        del base
        if rc != 0:
            raise OSError(ctypes.get_errno(), "mincore")
        return sum(v & 1 for v in vec) * mmap.PAGESIZE
    finally:
        mm.close()


@pytest.fixture
def page_cache_bytes() -> Callable[[str | Path], int]:
    """``page_cache_bytes(path) -> bytes of the file in the page cache``; skipped off Linux."""
    if not sys.platform.startswith("linux"):
        pytest.skip("page cache residency via mincore (Linux)")
    return _page_cache_bytes


def _kill_when_ready(code: str, *args: str) -> None:
    """Run ``python -c code *args``, wait until it prints ``ready``, SIGKILL it, reap it."""
    import signal
    import subprocess

    child = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=30)


@pytest.fixture
def kill_when_ready() -> Callable[..., None]:
    """``kill_when_ready(code, *args)``: a child process killed with SIGKILL once it says ``ready``."""
    if sys.platform == "win32":
        pytest.skip("SIGKILL")
    return _kill_when_ready


def _takes_direct_io(folder: Path) -> bool:
    """Whether files in ``folder`` can be written with direct I/O (one probe file, removed)."""
    from rollrec._npz.direct_io import open_direct

    probe = folder / ".probe"
    fd = os.open(probe, os.O_RDWR | os.O_CREAT | os.O_EXCL)
    try:
        dfd = open_direct(fd, str(probe))
        if dfd is not None:
            os.close(dfd)
        return dfd is not None
    finally:
        os.close(fd)
        probe.unlink()


def _collapses(folder: Path) -> bool:
    """Whether files in ``folder`` can have ranges removed in place (``fallocate(COLLAPSE_RANGE)``:
    ext4, XFS; one probe file, removed)."""
    from rollrec._npz.stream import _collapsible

    probe = folder / ".probe"
    fd = os.open(probe, os.O_RDWR | os.O_CREAT | os.O_EXCL)
    try:
        return _collapsible(fd)
    finally:
        os.close(fd)
        probe.unlink()


@pytest.fixture
def collapses(tmp_path: Path) -> bool:
    """Whether the test folder's file system removes the holes of a finished file in place
    (``COLLAPSE_RANGE``) rather than copying members over them."""
    return _collapses(tmp_path)


@pytest.fixture
def direct_dir(tmp_path: Path) -> Path:
    """The test folder, where its file system takes O_DIRECT (skipped elsewhere, e.g. on tmpfs)."""
    if not _takes_direct_io(tmp_path):
        pytest.skip(f"{tmp_path}: this file system refuses O_DIRECT")
    return tmp_path


def _make_model(link_names: list[str]) -> Any:
    """A `RobotModel` of every kind of geom: a box on link 0, a capsule and a tetrahedron mesh on the
    last link, a sphere on each other link, and static geoms (a floor plane, a 3x4 height field)."""
    from rollrec.model import RobotModel

    L = len(link_names)
    geoms = [  # type, link, size, pos, rgba, dataid
        (6, 0, (0.2, 0.1, 0.05), (0, 0, 0), (0.9, 0.2, 0.2, 1), -1),
        (3, L - 1, (0.04, 0.1, 0), (0, 0, -0.1), (0.2, 0.8, 0.2, 1), -1),
        (7, L - 1, (0, 0, 0), (0, 0, 0.05), (0.2, 0.2, 0.9, 1), 0),
        *[(2, i, (0.05, 0, 0), (0, 0, 0), (0.9, 0.9, 0.2, 1), -1) for i in range(1, L - 1)],
        (0, -1, (0, 0, 1.0), (0, 0, 0), (0.5, 0.5, 0.5, 1), -1),
        (1, -1, (0, 0, 0), (3, 0, 0), (0.4, 0.3, 0.2, 1), 0),
    ]
    return RobotModel(
        link_names=link_names,
        geom_type=[g[0] for g in geoms], geom_link=[g[1] for g in geoms], geom_size=[g[2] for g in geoms],
        geom_pos=[g[3] for g in geoms], geom_quat=[(1, 0, 0, 0)] * len(geoms), geom_rgba=[g[4] for g in geoms],
        geom_group=[0] * len(geoms), geom_dataid=[g[5] for g in geoms],
        mesh_vert=[(0, 0, 0), (0.1, 0, 0), (0, 0.1, 0), (0, 0, 0.1)], mesh_face=[(0, 2, 1), (0, 1, 3), (0, 3, 2), (1, 2, 3)],
        mesh_vertadr=[0], mesh_vertnum=[4], mesh_faceadr=[0], mesh_facenum=[4],
        hfield_size=[(1.0, 1.5, 0.3, 0.1)], hfield_nrow=[3], hfield_ncol=[4], hfield_adr=[0],
        hfield_data=np.linspace(0, 1, 12),
        link_parents=[-1] + list(range(L - 1)),
        info={"source": "test"},
    ).check()


@pytest.fixture
def make_model() -> Callable[[list[str]], Any]:
    """``make_model(link_names)``: a small `RobotModel` with every geom kind (see `_make_model`)."""
    return _make_model


def _write_sharded(
    directory: str | Path,
    fields: dict[str, Any],
    counts: tuple[int, ...],
    *,
    offsets: tuple[int, ...] | None = None,
    missing: tuple[int, ...] = (),
    short: dict[int, int] | None = None,
    dt: float = 0.02,
    run_id: str = "0123abcd",
    meta: dict[str, Any] | None = None,
    model: Any = None,
) -> Path:
    """Write ``fields`` (a v1 field dict over all N envs) as a sharded rollout, as the ranks would.

    Rank r holds ``counts[r]`` envs starting at ``offsets[r]`` (default: rank order). Ranks in
    ``missing`` leave no file; ``short[r] = k`` keeps only rank r's first k steps. The manifest
    is the one the close-time gather would write had every rank finished. ``meta`` goes into
    every shard's ``meta``, ``model`` (a `RobotModel`) into every shard file.
    """
    import rollrec
    from rollrec.format.manifest import Manifest, ShardEntry, check_layout, shard_file_name
    from rollrec.io.sharded.manifest import write_manifest

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    starts = check_layout(list(counts), list(offsets) if offsets is not None else [None] * len(counts))
    layout = [[o, n] for o, n in zip(starts, counts)]
    entries = []
    T = fields["obs"].shape[0]
    for rank, (o, n) in enumerate(layout):
        steps = (short or {}).get(rank, T)
        entries.append(ShardEntry(rank, shard_file_name(rank), o, n, num_steps=steps, status="complete", host="test"))
        if rank in missing:
            continue
        part = {k: (v if k in ("rew_term_names", "link_names") else np.asarray(v)[:steps, o : o + n]) for k, v in fields.items()}
        shard = {"run_id": run_id, "rank": rank, "world_size": len(counts), "env_offset": o, "num_envs": n,
                 "total_envs": sum(counts), "layout": layout, "hosts": ["test"] * len(counts)}
        rollrec.save(directory / shard_file_name(rank), part, dt=dt, env_name="sharded",
                     meta={**(meta or {}), "shard": shard}, model=model)
    write_manifest(directory, Manifest(run_id=run_id, world_size=len(counts), num_envs=sum(counts), dt=dt,
                                       shards=entries, env_name="sharded", state="complete", num_steps=T))
    return directory


@pytest.fixture
def write_sharded() -> Callable[..., Path]:
    """``write_sharded(dir, fields, counts, missing=(2,), short={1: 5})`` writes a sharded rollout."""
    return _write_sharded


@pytest.fixture(scope="session")
def volume_reference() -> tuple[Callable[..., dict[str, Any]], Callable[..., list[dict[str, Any]]]]:
    """``(expected_file, make_steps)`` of `tests/volume_reference.py`: the naive reference of volume
    control (keep every step on the host, select afterwards) and a generator of `record()` steps."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("volume_reference", REPO_ROOT / "tests" / "volume_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.expected_file, module.make_steps


def _load_helper(name: str) -> Any:
    import importlib.util

    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "tests" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def camera_frames() -> Any:
    """`tests/camera_frames.py`: ``pattern``, ``walker``, ``psnr``."""
    return _load_helper("camera_frames")


def _gif_frames(path: str | Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        frames = []
        for i in range(im.n_frames):
            im.seek(i)
            frames.append(np.asarray(im.convert("RGB")))
    return np.stack(frames)


@pytest.fixture(scope="session")
def gif_frames() -> Callable[[str | Path], np.ndarray]:
    """``gif_frames(path)``: every frame of the GIF at ``path``, ``[T, H, W, 3]`` uint8 RGB."""
    return _gif_frames


@pytest.fixture(scope="session")
def walker_camera(camera_frames) -> tuple[np.ndarray, np.ndarray]:
    """``(rgb [48, 4, 128, 128, 3] uint8, depth [48, 4, 128, 128] uint16)``: the walker's chase camera."""
    return camera_frames.walker(48, [0, 5, 10, 15])


@pytest.fixture
def cuda_standin(monkeypatch: pytest.MonkeyPatch) -> Any:
    """A `StandInCuda` with two devices in place of ``torch.cuda`` (see `tests/cuda_standin.py`); NOT a GPU."""
    import importlib.util

    module = sys.modules.get("cuda_standin")
    if module is None:
        spec = importlib.util.spec_from_file_location("cuda_standin", REPO_ROOT / "tests" / "cuda_standin.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["cuda_standin"] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
    return module.StandInCuda(devices=2).install(monkeypatch)


# ---- runs to compare (rollrec compare, the viewer's verdict) --------------------------------------
WALKER_ENVS, WALKER_STEPS, WALKER_EPISODE = 48, 160, 45


def record_walker_run(path: Path, *, seed: int = 0, amplitude: float = 0.8, num_envs: int = WALKER_ENVS) -> Path:
    """``WalkerEnv(num_envs, seed)`` under ``GaitPolicy(amplitude)`` for `WALKER_STEPS` steps, episodes
    of at most `WALKER_EPISODE` steps (staggered), recorded by `RolloutRecorder` into ``path``."""
    from rollrec.envs import GaitPolicy, WalkerEnv
    from rollrec.loop.rollout import RolloutRecorder

    env = WalkerEnv(num_envs, seed=seed, max_episode_steps=WALKER_EPISODE)
    return RolloutRecorder(env, max_steps=WALKER_STEPS, progress=False).run(GaitPolicy(amplitude=amplitude), path.parent,
                                                                            filename=path.name)


@pytest.fixture(scope="session")
def walker_runs(tmp_path_factory) -> dict[str, Path]:
    """``{"policy", "perturbed", "other_seed", "fewer_envs"}``: recorded runs of the built-in walker: the
    policy, a perturbed policy (a smaller stride) on the same seeds, the policy on other seeds, and on
    half the envs (shared by the session: do not modify)."""
    d = tmp_path_factory.mktemp("walker_runs")
    return {
        "policy": record_walker_run(d / "policy.npz"),
        "perturbed": record_walker_run(d / "perturbed.npz", amplitude=0.55),
        "other_seed": record_walker_run(d / "other_seed.npz", seed=1),
        "fewer_envs": record_walker_run(d / "fewer_envs.npz", num_envs=WALKER_ENVS // 2),
    }

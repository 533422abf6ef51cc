"""End to end: record + flush + finalise a file on disk, against the device's limit and today's tools.

All contenders write the same steps (`Workload`) to the same directory, one after another in each
repeat, and each is timed until its bytes are on disk (rollrec syncs before it renames; every
other writer is followed by ``fsync``): a page-cache rate is not a disk rate, it only defers the
writing. Every file is deleted right after it is timed.

* the I/O limit: the same number of bytes written with ``O_DIRECT`` from an aligned buffer and
  synced (`disk.direct_write`): the device's own rate, the reference of rollrec's rows;
* ``rollrec``: `Recorder` with ``max_steps`` known (each byte written once), and without it
  (room for as many steps as the disk holds; the members after the largest move once, at
  close: a secondary row, the 10 GB figure is in `sustained`); and with ``direct_io=False``
  (buffered writes, the writer before direct I/O): direct I/O must not make short rollouts slower;
* ``np.save`` of a touched array of the same bytes, then ``fsync``; and without the ``fsync``
  (a page-cache rate, shown for what it is);
* the original approach: per step, ``.cpu().numpy()`` of every field into lists (``.copy()``
  here stands for the fresh host tensor ``.cpu()`` makes of a GPU tensor), ``np.array`` at the
  end, then ``np.savez_compressed`` (its default) or ``np.savez``, then ``fsync``;
* TorchRL: ``ReplayBuffer(LazyTensorStorage)`` extended with one step of N envs at a time (a
  TensorDict built per step, as a user would), then ``dumps()`` and ``fsync`` of every file it
  wrote; skipped without torchrl.

Rates are GB/s of step data and env-steps/s (steps x N per second).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from rollrec.bench.disk import direct_write
from rollrec.bench.measure import GB, Row, median, paired_ratio, remove, skipped, timed
from rollrec.bench.workload import REWARD_TERMS, Workload
from rollrec.engine import Recorder

SECTION = "2 end to end"


def rollrec_e2e(wl: Workload, path: Path, steps: int, known_length: bool = True, direct_io: bool | None = None) -> float:
    """Seconds to record ``steps`` steps and finish the file."""

    def run() -> None:
        rec = Recorder(path, wl.num_envs, max_steps=steps if known_length else None, direct_io=direct_io)
        for t in range(steps):
            rec.record(**wl.step(t))
        rec.close()

    s, _ = timed(run)
    remove(path)
    return s


def fsync_tree(path: Path) -> None:
    """``fsync`` a file, or every file under a folder (then the folder's entries)."""
    paths = [path] if path.is_file() else [Path(d) / f for d, _, files in os.walk(path) for f in files] + [path]
    for p in paths:
        fd = os.open(p, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def np_save(data: np.ndarray, path: Path, fsync: bool = False) -> float:
    """Seconds for ``np.save`` of ``data`` (and with ``fsync``, until it is on disk)."""

    def run() -> None:
        np.save(path, data)
        if fsync:
            fsync_tree(path)

    s, _ = timed(run)
    remove(path)
    return s


def original_record(wl: Workload, steps: int) -> dict[str, np.ndarray]:
    """The original approach's recording: per-step host copies into lists, stacked at the end."""
    lists: dict[str, list[np.ndarray]] = {}
    terms: list[dict[str, np.ndarray]] = []
    for t in range(steps):
        s = wl.step(t)
        for k, v in s.items():
            if k == "reward_terms":
                terms.append({n: x.cpu().numpy().copy() for n, x in v.items()})
            else:
                lists.setdefault(k, []).append(v.cpu().numpy().copy())
    arrays = {k: np.array(v) for k, v in lists.items()}
    arrays["rew_terms"] = np.array([np.stack([d[n] for n in REWARD_TERMS], axis=-1) for d in terms])
    return arrays


def original_e2e(wl: Workload, path: Path, steps: int, compressed: bool) -> tuple[float, float]:
    """``(record seconds, save + fsync seconds)`` of the original approach."""
    rec_s, held = timed(lambda: {"arrays": original_record(wl, steps)})
    save = np.savez_compressed if compressed else np.savez
    save_s, _ = timed(lambda: (save(path, **held["arrays"]), fsync_tree(path)))
    held.clear()
    remove(path)
    return rec_s, save_s


def torchrl_available() -> bool:
    try:
        import tensordict  # noqa: F401
        import torchrl.data  # noqa: F401
    except Exception:  # noqa: BLE001 - an optional dependency that may fail in any way
        return False
    return True


def torchrl_e2e(wl: Workload, path: Path, steps: int) -> tuple[float, float]:
    """``(extend seconds, dumps + fsync seconds)`` of a TorchRL replay buffer holding the rollout."""
    logging.getLogger("torchrl").setLevel(logging.WARNING)
    from tensordict import TensorDict
    from torchrl.data import LazyTensorStorage, ReplayBuffer

    n = wl.num_envs
    holder: dict[str, Any] = {}

    def extend() -> None:
        rb = ReplayBuffer(storage=LazyTensorStorage(steps * n))
        for t in range(steps):
            s = wl.step(t)
            fields = {k: v for k, v in s.items() if k != "reward_terms"}
            fields["reward_terms"] = TensorDict(s["reward_terms"], batch_size=[n])
            rb.extend(TensorDict(fields, batch_size=[n]))
        holder["rb"] = rb

    ext_s, _ = timed(extend)
    path.mkdir(parents=True, exist_ok=True)
    dump_s, _ = timed(lambda: (holder["rb"].dumps(path), fsync_tree(path)))
    del holder["rb"]
    remove(path)
    return ext_s, dump_s


def torchrl_version() -> str | None:
    try:
        import tensordict
        import torchrl
    except Exception:  # noqa: BLE001 - optional
        return None
    return f"torchrl {torchrl.__version__}, tensordict {tensordict.__version__}"


def end_to_end(
    wl: Workload,
    out_dir: Path,
    *,
    steps: int,
    repeats: int,
    compressed_steps: int,
    original: bool = True,
    torchrl: bool = True,
    growth: bool = True,
) -> list[Row]:
    """Rows of GB/s and env-steps/s for rollrec and each contender at ``wl.num_envs`` envs."""
    nbytes = steps * wl.step_bytes
    data = wl.flat_bytes(steps)
    have_torchrl = torchrl and torchrl_available()
    r: dict[str, list[float]] = {
        k: [] for k in ("limit", "rollrec", "buffered", "grow", "save", "save_fsync", "orig_rec", "orig_save", "trl_ext", "trl_dump")
    }
    # Warm-up (untimed): on a VM, memory the guest has not used lately is slow to touch again.
    np_save(data, out_dir / "save.npy")
    rollrec_e2e(wl, out_dir / "rollrec.npz", steps)
    for _ in range(repeats):
        limit = direct_write(out_dir / "limit.bin", nbytes)
        if limit is not None:
            r["limit"].append(limit)
        r["rollrec"].append(rollrec_e2e(wl, out_dir / "rollrec.npz", steps))
        r["buffered"].append(rollrec_e2e(wl, out_dir / "buffered.npz", steps, direct_io=False))
        r["save_fsync"].append(np_save(data, out_dir / "save.npy", fsync=True))
        r["save"].append(np_save(data, out_dir / "save.npy"))
        if growth:
            r["grow"].append(rollrec_e2e(wl, out_dir / "grow.npz", steps, known_length=False))
        if original:
            a, b = original_e2e(wl, out_dir / "orig.npz", steps, compressed=False)
            r["orig_rec"].append(a)
            r["orig_save"].append(b)
        if have_torchrl:
            a, b = torchrl_e2e(wl, out_dir / "trl", steps)
            r["trl_ext"].append(a)
            r["trl_dump"].append(b)
    del data
    comp = None
    if original and compressed_steps:
        # ~30x slower than the rest: fewer steps and one repeat; compared per byte with rollrec's rate above.
        comp = original_e2e(wl, out_dir / "orig-c.npz", compressed_steps, compressed=True)

    N, gbs = wl.num_envs, lambda s: nbytes / s / GB
    params = {"N": N, "steps": steps, "repeats": repeats, "GB": nbytes / GB}
    rollrec_rate = [nbytes / s for s in r["rollrec"]]
    rows: list[Row] = []

    def env_steps(key: str) -> str:
        return f"{steps * N / median(r[key]) / 1e6:.2f} M env-steps/s"

    def vs_limit(name: str, key: str, target: tuple[str, float] | None, note: str) -> Row:
        if not r["limit"]:
            return Row(SECTION, name, gbs(median(r[key])), "GB/s", note=note + "; no O_DIRECT reference (refused here)",
                       params=params)
        return Row(SECTION, name, gbs(median(r[key])), "GB/s", "O_DIRECT write", gbs(median(r["limit"])),
                   ratio=paired_ratio(r["limit"], r[key]), ratio_means="this / device limit", target=target,
                   note=note, params=params)

    rows.append(vs_limit(f"rollrec, max_steps known, N={N}", "rollrec", (">=", 0.7), env_steps("rollrec")))
    rows.append(Row(SECTION, f"rollrec, direct_io=False (buffered), N={N}", gbs(median(r["buffered"])), "GB/s",
                    "rollrec", gbs(median(r["rollrec"])), ratio=paired_ratio(r["buffered"], r["rollrec"]),
                    ratio_means="rollrec (default) / buffered rate", target=(">=", 1.0),
                    note="direct I/O must not slow short rollouts", params=params))
    if growth:
        rows.append(vs_limit(f"rollrec, max_steps unknown, N={N}", "grow", None, env_steps("grow") + "; compacted at close"))
    rows.append(vs_limit(f"np.save + fsync, N={N}", "save_fsync", None,
                         f"{median(r['save_fsync']) / steps * 1e3:.2f} ms/step"))
    if original:
        orig = [a + b for a, b in zip(r["orig_rec"], r["orig_save"])]
        rows.append(
            Row(
                SECTION,
                f"original + np.savez + fsync, N={N}",
                gbs(median(orig)),
                "GB/s",
                "rollrec",
                median(rollrec_rate) / GB,
                ratio=paired_ratio(orig, r["rollrec"]),
                ratio_means="rollrec / this rate",
                target=None,
                note=f"record {median(r['orig_rec']) / steps * 1e3:.1f} ms/step, +savez {median(orig) / steps * 1e3:.1f} ms/step",
                params=params,
            )
        )
    if comp is not None:
        a, b = comp
        rate = compressed_steps * wl.step_bytes / (a + b)
        rows.append(
            Row(
                SECTION,
                f"original + np.savez_compressed + fsync, N={N}",
                rate / GB,
                "GB/s",
                "rollrec",
                median(rollrec_rate) / GB,
                ratio=median(rollrec_rate) / rate,
                ratio_means="rollrec / this rate",
                target=(">=", 30.0),
                note=f"record {a / compressed_steps * 1e3:.1f} ms/step, +savez_compressed {(a + b) / compressed_steps * 1e3:.1f} ms/step",
                params={"N": N, "steps": compressed_steps, "repeats": 1},
            )
        )
    if have_torchrl:
        trl = [a + b for a, b in zip(r["trl_ext"], r["trl_dump"])]
        rows.append(
            Row(
                SECTION,
                f"TorchRL ReplayBuffer + dumps + fsync, N={N}",
                gbs(median(trl)),
                "GB/s",
                "rollrec",
                median(rollrec_rate) / GB,
                ratio=paired_ratio(trl, r["rollrec"]),
                ratio_means="rollrec / this rate",
                target=(">=", 3.0),
                note=f"extend {median(r['trl_ext']) / steps * 1e3:.2f} ms/step, +dumps {median(trl) / steps * 1e3:.2f} ms/step; "
                + (torchrl_version() or ""),
                params=params,
            )
        )
    elif torchrl:
        rows.append(skipped(SECTION, f"TorchRL ReplayBuffer + dumps + fsync, N={N}", "torchrl not installed", N=N))
    if r["limit"]:
        rows.append(Row(SECTION, f"O_DIRECT write (I/O limit), N={N}", gbs(median(r["limit"])), "GB/s",
                        note="64 MiB writes from an aligned buffer, synced", params=params))
    rows.append(Row(SECTION, f"np.save, no fsync (page cache), N={N}", gbs(median(r["save"])), "GB/s",
                    note="memory speed: the kernel writes it back later; not a disk rate", params=params))
    return rows

"""Kill a rollout writer at every step, or at random times, then recover and compare. A script.

    python crash_driver.py SCENARIO MODE WORKDIR [--io direct|buffered] [--random N] [--seed S]

Each trial forks a child that writes a rollout the way the recorder does (append rows per
member, commit, then finish: finalise (closing holes), compress, rename, tidy) into its own folder,
and dies by SIGKILL at the chosen moment. The parent then runs `rollrec.recover` where a
sidecar is left and checks the result against exactly what was written: every value encodes its
step, env and component, so a row from the wrong place or of the wrong step never passes.

SCENARIO (all with a later member much larger than the first, as link poses are):

- ``short``: 40 rows reserved, 27 written (Ctrl-C, ``stop_on``, a walker past 3/4 of max_steps);
- ``empty-tail``: 4000 rows reserved, 27 written (holes large enough to slide members down);
- ``grow``: 5 rows reserved, grown several times to hold 27 (unknown length);
- ``compress``: ``short`` with ``compress=True``;
- ``exact``: 27 reserved, 27 written;
- ``short-closed``, ``grow-closed``: those two with every hole closed however small, so members
  whose new place overlaps their rows go past the end first, then slide down;
- ``open``: unknown length as the recorder writes it (``open_ended``): 5 rows allocated, room for
  as many as the disk holds (sparse), the holes between members removed at finalize (in place
  with ``COLLAPSE_RANGE`` where the file system can, as in the test folder; else, as on tmpfs,
  the members after the first kept in the page cache and slid down);
- ``open-grow``: ``open`` with room for 12 rows only, so it also grows (twice) to hold 27.

MODE: ``points`` kills at the k-th `rollrec._npz.faults` point for k = 1, 2, ... until a child
completes; ``writes`` kills before the k-th call that changes a file (pwrite, write, ftruncate,
fallocate (punching holes, removing ranges), copy_file_range, rename, unlink), which needs nothing from the code under test;
``random`` kills ``--random N`` times after a random delay within one undisturbed run's duration.

``--io``: rows written with direct I/O (``O_DIRECT``: whole aligned blocks, writes in flight on
I/O threads; WORKDIR must be on a file system that takes it) or buffered (the fallback, with its
bounded writeback). Both must recover exactly.

Prints one JSON line per trial and a summary line ``{"summary": ...}``; exits 1 if a trial fails.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import sys
import time
import zipfile

import numpy as np

N, ROWS, CHUNK = 6, 27, 4
#: name -> (row shape after N, dtype): the file order of a walker recording with link poses.
MEMBERS = {
    "obs": ((12,), np.float32),
    "act": ((4,), np.float32),
    "rew": ((), np.float32),
    "done": ((), np.bool_),
    "truncated": ((), np.bool_),
    "base_pos": ((3,), np.float32),
    "base_quat": ((4,), np.float32),
    "rew_terms": ((3,), np.float32),
    "link_pos": ((40, 3), np.float32),
    "link_quat": ((40, 4), np.float32),
}
#: name -> (rows reserved, compress, close every hole)
SCENARIOS = {
    "short": (40, False, False), "empty-tail": (4000, False, False), "grow": (5, False, False),
    "compress": (40, True, False), "exact": (ROWS, False, False),
    "short-closed": (40, False, True), "grow-closed": (5, False, True),
    "open": (5, False, False), "open-grow": (5, False, False),
}
#: open-ended scenarios -> rows the reservation is limited to (None: the disk's free space)
OPEN_ENDED = {"open": None, "open-grow": 12}
_MUTATING = ("pwrite", "write", "ftruncate", "posix_fallocate", "copy_file_range", "replace", "rename", "unlink")


def expected(name: str) -> np.ndarray:
    """``[ROWS, N, *row]``: step * 10_000 + env * 1_000 + component (bools: a step/env pattern)."""
    row, dtype = MEMBERS[name]
    t = np.arange(ROWS).reshape(ROWS, 1, *([1] * len(row)))
    n = np.arange(N).reshape(1, N, *([1] * len(row)))
    comp = np.arange(int(np.prod(row, dtype=np.int64))).reshape(1, 1, *row) if row else 0
    if dtype == np.bool_:
        return np.broadcast_to((t * 7 + n * 3 + (1 if name == "done" else 2)) % 5 == 0, (ROWS, N, *row)).copy()
    return (t * 10_000 + n * 1_000 + comp).astype(dtype)


def write(final: str, capacity: int, compress: bool, close_all: bool = False, direct: bool = False,
          scenario: str = "") -> None:
    """What `Recorder` does to the file, without its engine threads: append, commit, finish."""
    from rollrec._npz import stream as npz_stream
    from rollrec.format.meta import make_meta
    from rollrec._npz.stream import MemberSpec, NpzStreamWriter
    from rollrec.io.partial import finish, partial_paths, static_members

    if close_all:  # this child only: close holes of any size
        npz_stream._COMPACT_MIN_HOLES = npz_stream._COMPACT_MIN_FRACTION = npz_stream._MIN_SLIDE = 0

    data_path, layout_path = partial_paths(final)
    meta = make_meta(num_steps=0, num_envs=N, dt=0.02, env_name="crash-test")
    info = {"meta": meta, "rew_term_names": ["a", "b", "c"], "link_names": [f"l{i}" for i in range(40)], "compress": compress}
    arrays = {name: expected(name) for name in MEMBERS}
    specs = [MemberSpec(name, a.dtype.str, a.shape[1:], capacity) for name, a in arrays.items()]
    open_ended = scenario in OPEN_ENDED
    if OPEN_ENDED.get(scenario):  # this child only: a reservation of that many rows
        npz_stream._RESERVE_LIMIT = OPEN_ENDED[scenario] * sum(m.row_bytes for m in specs)
    w = NpzStreamWriter(data_path, specs, layout_path=layout_path, recovery_info=info, direct=direct,
                        open_ended=open_ended)
    if open_ended:
        assert w.capacity > capacity and w.capacity == (OPEN_ENDED[scenario] or w.capacity), w.capacity  # reserved
    for a in range(0, ROWS, CHUNK):
        b = min(ROWS, a + CHUNK)
        for name, arr in arrays.items():
            w.append(name, arr[a:b], wait=False)  # as the engine's writer thread: writes in flight, then
        w.commit(b)  # commit waits for them
    small = static_members(dict(meta, num_steps=ROWS), info["rew_term_names"], info["link_names"])
    finish(w, small, ROWS, final, compress)


def check(folder: str, final: str) -> dict:
    """Recover if needed, then compare the file with what was written. Returns the trial's record."""
    import rollrec

    left = sorted(os.listdir(folder))
    out: dict = {"left": left}
    if any(name.endswith(".json") for name in left):
        try:
            rollrec.recover(final)
            out["recovered"] = True
        except FileNotFoundError as exc:  # killed before the first step was named, or after the end
            out["nothing"] = str(exc)
        except Exception as exc:  # noqa: BLE001 - a refusal is a failed trial, reported
            return {**out, "ok": False, "error": f"recover: {type(exc).__name__}: {exc}"}
    rest = sorted(os.listdir(folder))
    if not os.path.exists(final):
        out["ok"] = rest == [] and ("nothing" in out or left == [])
        out["error"] = None if out["ok"] else f"no file, and left behind: {rest}"
        return out
    if rest != [os.path.basename(final)]:
        return {**out, "ok": False, "error": f"left behind: {rest}"}
    with zipfile.ZipFile(final) as zf:
        bad = zf.testzip()
    if bad is not None:
        return {**out, "ok": False, "error": f"CRC mismatch in {bad}"}
    with np.load(final, allow_pickle=False) as npz, rollrec.load(final) as r:
        T = r.T
        out["rows"] = T
        for name in MEMBERS:
            for got in (npz[name], np.asarray(r[name])):
                if not np.array_equal(got, expected(name)[:T]):
                    return {**out, "ok": False, "error": f"{name!r}: rows differ from what was written"}
        if r.meta["num_steps"] != T:
            return {**out, "ok": False, "error": f"meta num_steps {r.meta['num_steps']} != {T}"}
    out["ok"] = T <= ROWS and (T % CHUNK == 0 or T == ROWS)  # only whole commits
    out["error"] = None if out["ok"] else f"{T} rows is not a commit boundary"
    return out


def _arm_writes(k: int) -> list[int]:
    """Make the k-th file-changing os call SIGKILL this process instead of running."""
    seen = [0]

    def wrap(fn):
        def wrapper(*args, **kwargs):
            seen[0] += 1
            if seen[0] == k:
                os.kill(os.getpid(), signal.SIGKILL)
            return fn(*args, **kwargs)

        return wrapper

    for name in _MUTATING:
        if hasattr(os, name):
            setattr(os, name, wrap(getattr(os, name)))
    try:  # punching holes and removing ranges go through ctypes, not os
        from rollrec._npz import files

        files.punch_hole = wrap(files.punch_hole)
        files.collapse_range = wrap(files.collapse_range)
        from rollrec._npz import stream as npz_stream

        npz_stream.punch_hole = files.punch_hole
        npz_stream.collapse_range = files.collapse_range
    except ImportError:  # code without hole punching
        pass
    return seen


def _arm_points(k: int) -> list[int]:
    from rollrec._npz import faults

    seen = [0]

    def hook(name: str) -> None:
        seen[0] += 1
        if seen[0] == k:
            os.kill(os.getpid(), signal.SIGKILL)

    faults.hook = hook
    return seen


def trial(workdir: str, label: str, scenario: str, arm, kill_after: float | None = None, direct: bool = False) -> tuple[bool, str, str]:
    """Fork a child that writes ``scenario`` with ``arm()`` applied; returns (killed, folder, final).

    ``kill_after``: the parent SIGKILLs the child that many seconds after forking.
    """
    folder = os.path.join(workdir, label)
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    final = os.path.join(folder, "run.npz")
    capacity, compress, close_all = SCENARIOS[scenario]
    pid = os.fork()
    if pid == 0:  # child
        code = 0
        try:
            arm()
            write(final, capacity, compress, close_all, direct, scenario)
        except BaseException:  # noqa: BLE001 - report and leave with a code
            import traceback

            traceback.print_exc()
            code = 3
        os._exit(code)
    if kill_after is not None:
        time.sleep(kill_after)
        os.kill(pid, signal.SIGKILL)  # a zombie until reaped: harmless if it already finished
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL:
        return True, folder, final
    if os.WEXITSTATUS(status) != 0:
        raise SystemExit(f"{label}: the writer failed by itself (exit {os.WEXITSTATUS(status)})")
    return False, folder, final


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("scenario", choices=sorted(SCENARIOS))
    ap.add_argument("mode", choices=("points", "writes", "random"))
    ap.add_argument("workdir")
    ap.add_argument("--io", choices=("direct", "buffered"), default="buffered")
    ap.add_argument("--random", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    results = []
    direct = args.io == "direct"
    if args.mode in ("points", "writes"):
        arm_fn = _arm_points if args.mode == "points" else _arm_writes
        k = 1
        while True:
            killed, folder, final = trial(args.workdir, f"{args.mode}-{k}", args.scenario, lambda k=k: arm_fn(k), direct=direct)
            if not killed:
                break
            results.append({"trial": k, **check(folder, final)})
            print(json.dumps(results[-1]), flush=True)
            shutil.rmtree(folder)
            k += 1
    else:
        start = time.perf_counter()
        killed, folder, final = trial(args.workdir, "undisturbed", args.scenario, lambda: None, direct=direct)
        duration = time.perf_counter() - start
        rng = random.Random(args.seed)
        for i in range(args.random):
            delay = rng.uniform(0, duration)
            killed, folder, final = trial(args.workdir, f"random-{i}", args.scenario, lambda: None, kill_after=delay,
                                          direct=direct)
            results.append({"trial": i, "delay": delay, "killed": killed, **check(folder, final)})
            print(json.dumps(results[-1]), flush=True)
            shutil.rmtree(folder)
    failed = [r for r in results if not r["ok"]]
    print(json.dumps({"summary": {"trials": len(results), "failed": len(failed)}}), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

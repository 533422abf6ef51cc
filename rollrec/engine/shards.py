"""Record one rollout across the ranks of ``torch.distributed``: a shard file per rank, one manifest.

::

    Recorder(path, n_r)   every rank: all-gather {n_r, env_offset, path, host}  (collective)
                          -> env layout checked the same way on every rank, run id of rank 0
                          rank 0 writes path/manifest.json (state "recording")
    record() ...          each rank streams path/rank-0000r.npz through the ordinary pipeline
    close()               finish own file; all-gather {steps, fields, dtypes, status}  (collective)
                          -> rank 0 writes the final manifest; barrier; every rank returns path

The exchanges run on a gloo side group with deadlines (`rollrec.engine.dist_meta`), so a
default group running NCCL is never used for them and a dead rank never blocks ``close()``
for longer than ``timeout_s``.

Faults. A rank killed outright leaves its ``.partial`` file (every flushed segment, see
`rollrec.recover`). Launchers tear the job down after that: torchrun sends SIGTERM to the other
ranks, then SIGKILL 30 s later. While a session is open, SIGTERM (if nothing else handles it)
raises `RankTerminated` (a ``SystemExit``, code 143) in the main thread, deferred while
`Recorder.record` is running so a step is never half-written; the ``with Recorder(...)`` block
(or `RolloutRecorder`) then finishes the shard. A SIGTERM during ``close()`` abandons the
gather instead, and ``close()`` raises `RankTerminated` once the file is finished. When the
gather fails, rank 0 writes the manifest from the shard files it can see; ``rollrec recover
path`` finishes the partial files and updates it once every file is in place.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rollrec.engine import dist_meta
from rollrec.format.manifest import Manifest, ShardEntry, check_layout, rollout_dir, shard_file_name
from rollrec.io.opening import load
from rollrec.io.partial import PartialRecording
from rollrec.io.sharded.manifest import write_manifest
from rollrec.io.sharded.shards import apply_states, check_consistent, open_shard, shard_facts

SIGTERM_EXIT_CODE = 128 + signal.SIGTERM


class RankTerminated(SystemExit):
    """SIGTERM reached a rank while it recorded a shard; raised once the shard can be finished."""

    def __init__(self) -> None:
        super().__init__(SIGTERM_EXIT_CODE)


def agree(value: Any, timeout_s: float = 300.0) -> Any:
    """Rank 0's ``value`` on every rank (e.g. a time-stamped file name); ``value`` itself without
    torch.distributed. A collective when distributed: every rank must call it."""
    if dist_meta.world() is None:
        return value
    group = dist_meta.metadata_group(timeout_s)
    return dist_meta.all_gather_json(value, group, "agreeing on a rollout name", timeout_s=timeout_s)[0]


class ShardSession:
    """This rank's part in a sharded recording: layout, shard file, and the collectives at close.

    Made by `start` (a collective); used by `Recorder` only.
    """

    def __init__(self, directory: Path, rank: int, world_size: int, layout: list[tuple[int, int]], hosts: list[str],
                 run_id: str, dt: float, env_name: str, timeout_s: float, group: Any):
        self.directory = directory
        self.rank = rank
        self.world_size = world_size
        self.layout = layout  # (env_offset, num_envs) per rank
        self.hosts = hosts
        self.run_id = run_id
        self.dt = dt
        self.env_name = env_name
        self.timeout_s = timeout_s
        self.group = group
        self.file = directory / shard_file_name(rank)
        self.closing = False
        self.terminating = False
        #: for benchmarks and logs: seconds this rank spent in the construction exchange ("start");
        #: `time.monotonic` when its close-time part began (after its file was finished) and ended
        #: ("close_from", "close_to"; the difference includes waiting for slower ranks).
        self.timings: dict[str, float] = {}

    @property
    def env_offset(self) -> int:
        return self.layout[self.rank][0]

    @property
    def meta(self) -> dict[str, Any]:
        """``meta["shard"]`` of this rank's file: enough to rebuild the manifest from any one shard."""
        return {
            "run_id": self.run_id, "rank": self.rank, "world_size": self.world_size,
            "env_offset": self.env_offset, "num_envs": self.layout[self.rank][1],
            "total_envs": sum(n for _, n in self.layout), "layout": [list(x) for x in self.layout], "hosts": self.hosts,
        }

    # ---- construction -----------------------------------------------------------------------
    @classmethod
    def start(cls, path: str | os.PathLike, num_envs: int, *, env_offset: int | None, dt: float, env_name: str,
              timeout_s: float) -> ShardSession | None:
        """Join the other ranks' recording of ``path`` (a collective); None without torch.distributed
        or with one rank. Raises ValueError, the same on every rank, for a bad layout or path."""
        where = dist_meta.world()
        if where is None:
            return None
        rank, world_size = where
        started = time.perf_counter()
        directory = rollout_dir(path)
        error = None
        try:  # local checks first, so that every rank hears of any rank's failure in the exchange
            directory.mkdir(parents=True, exist_ok=True)
            recording = PartialRecording(directory / shard_file_name(rank))
            holder = recording.holder()
            if holder is not None:  # another job records into this directory now: never touch its files
                error = f"{recording.busy_message(holder)}; pick another path, or wait until it finishes"
            else:
                for stale in (recording.path, recording.data_path, recording.sidecar_path):
                    Path(stale).unlink(missing_ok=True)
        except OSError as exc:
            error = f"{type(exc).__name__}: {exc}"
        group = dist_meta.metadata_group(timeout_s)
        mine = {"num_envs": int(num_envs), "env_offset": env_offset, "path": os.fspath(path),
                "host": socket.gethostname(), "run_id": uuid.uuid4().hex, "error": error}
        facts = dist_meta.all_gather_json(mine, group, f"starting the sharded recording of {directory}", timeout_s=timeout_s)
        errors = [f"rank {r}: {f['error']}" for r, f in enumerate(facts) if f["error"]]
        if errors:
            raise OSError(f"{directory}: cannot record a shard: " + "; ".join(errors))
        paths = {f["path"] for f in facts}
        if len(paths) > 1:
            raise ValueError(
                "every rank must pass the same path to Recorder; got "
                + ", ".join(f"rank {r}: {f['path']!r}" for r, f in enumerate(facts))
            )
        try:
            starts = check_layout([f["num_envs"] for f in facts], [f["env_offset"] for f in facts])
        except ValueError:
            with contextlib.suppress(OSError):
                directory.rmdir()  # only if empty: leave nothing behind for a refused layout
            raise
        layout = [(s, f["num_envs"]) for s, f in zip(starts, facts)]
        session = cls(directory, rank, world_size, layout, [f["host"] for f in facts], facts[0]["run_id"], dt,
                      env_name, timeout_s, group)
        if rank == 0:
            write_manifest(directory, session._manifest())
        session.timings["start"] = time.perf_counter() - started
        _install(session)
        return session

    def _manifest(self) -> Manifest:
        entries = [ShardEntry(r, shard_file_name(r), o, n, host=h) for r, ((o, n), h) in enumerate(zip(self.layout, self.hosts))]
        return Manifest(run_id=self.run_id, world_size=self.world_size, num_envs=sum(n for _, n in self.layout),
                        dt=self.dt, shards=entries, env_name=self.env_name)

    # ---- close --------------------------------------------------------------------------------
    def close(self, finish_file: Callable[[], Path]) -> Path:
        """Finish this rank's file with ``finish_file()``, gather every rank's facts, and (rank 0)
        write the manifest. Returns the rollout directory. Re-raises ``finish_file``'s error after
        telling the other ranks; raises `RankTerminated` at the end if SIGTERM came meanwhile."""
        self.closing = True
        try:
            try:
                result = finish_file()
            except BaseException as exc:
                self._join({"status": "failed", "error": f"{type(exc).__name__}: {exc}"})
                raise
            self.timings["close_from"] = time.monotonic()
            with load(result) as r:
                facts = shard_facts(r)
            self._join({"status": "complete", **facts})
            self.timings["close_to"] = time.monotonic()
        finally:
            _uninstall(self)
        if self.terminating:
            raise RankTerminated()
        return self.directory

    def abandon(self, reason: str) -> None:
        """Take part in the close-time gather without a shard (this rank recorded nothing)."""
        self.closing = True
        try:
            self._join({"status": "failed", "error": reason})
        finally:
            _uninstall(self)

    def _join(self, facts: dict[str, Any]) -> None:
        facts = {"rank": self.rank, "host": socket.gethostname(), **facts}
        try:
            if self.terminating:
                raise dist_meta.ExchangeError("skipped: this rank got SIGTERM")
            gathered = dist_meta.all_gather_json(facts, self.group, f"closing {self.directory}",
                                                 timeout_s=self.timeout_s, should_stop=lambda: self.terminating)
        except dist_meta.ExchangeError as exc:
            self._after_failed_gather(exc)
            return
        self._after_gather(gathered)

    def _after_gather(self, gathered: list[dict[str, Any]]) -> None:
        manifest = self._manifest()
        complete = []
        for f, e in zip(gathered, manifest.shards):
            e.host = f["host"]
            if f["status"] == "complete":
                e.status, e.num_steps = "complete", f["num_steps"]
                complete.append((e.file, f))
            else:
                e.status, e.note = "missing", f"rank {e.rank} failed to finish its shard: {f['error']}"
        check_consistent(complete)  # the same RolloutFormatError on every rank
        if complete:
            manifest.fields = complete[0][1]["fields"]
            manifest.num_steps = max(f["num_steps"] for _, f in complete)
        manifest.state = "complete" if len(complete) == self.world_size else "incomplete"
        if self.rank == 0:
            write_manifest(self.directory, manifest)
        try:  # so that the manifest is in place when close() returns on any rank
            dist_meta.barrier(self.group, f"waiting for the manifest of {self.directory}", timeout_s=self.timeout_s,
                              should_stop=lambda: self.terminating)
        except dist_meta.ExchangeError as exc:
            warnings.warn(f"rank {self.rank}: {exc}", RuntimeWarning, stacklevel=4)

    def _after_failed_gather(self, exc: Exception) -> None:
        """Every rank's own shard is finished; rank 0 writes the manifest from the files it sees."""
        if self.rank == 0:
            manifest = self._manifest()
            states = [open_shard(self.directory, e, self.run_id) for e in manifest.shards]
            for s in states:
                if not s.present:
                    s.note = (f"rank {s.entry.rank} did not finish the close-time gather ({exc}), and "
                              f"{s.entry.file} was not there when rank 0 wrote this manifest")
            try:
                write_manifest(self.directory, apply_states(manifest, states))
            finally:
                for s in states:
                    s.close()
        warnings.warn(
            f"rank {self.rank}: {exc}. This rank's shard {self.file} is complete; "
            + ("rank 0 wrote the manifest from the shard files it could see" if self.rank == 0 else
               "rank 0 writes the manifest from the shard files it can see")
            + f". Once every shard file is in place, `rollrec recover {self.directory}` finishes interrupted "
            "shards and updates the manifest.",
            RuntimeWarning, stacklevel=5,
        )


# ---- SIGTERM -------------------------------------------------------------------------------------
_ACTIVE: list[ShardSession] = []
_installed = False


def _install(session: ShardSession) -> None:
    global _installed
    _ACTIVE.append(session)
    if _installed or threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:  # never replace a handler someone else set
        signal.signal(signal.SIGTERM, _on_sigterm)
        _installed = True


def _uninstall(session: ShardSession) -> None:
    global _installed
    if session in _ACTIVE:
        _ACTIVE.remove(session)
    if _installed and not _ACTIVE and threading.current_thread() is threading.main_thread():
        if signal.getsignal(signal.SIGTERM) is _on_sigterm:  # unless someone replaced it meanwhile
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
        _installed = False


def _inside_record(frame: Any) -> bool:
    recorder = sys.modules.get("rollrec.engine.recorder")
    path = getattr(recorder, "__file__", None)
    while frame is not None:
        if frame.f_code.co_name in ("record", "record_frame") and frame.f_code.co_filename == path:
            return True
        frame = frame.f_back
    return False


def _on_sigterm(signum: int, frame: Any) -> None:
    for s in _ACTIVE:
        s.terminating = True
    if any(s.closing for s in _ACTIVE):
        return  # close() is finishing the shard; it raises RankTerminated when done
    if _inside_record(frame):  # finish the step first: deliver the signal again in a moment
        threading.Timer(0.002, os.kill, (os.getpid(), signal.SIGTERM)).start()
        return
    ranks = sorted({s.rank for s in _ACTIVE})
    print(f"rollrec: rank {','.join(map(str, ranks))} got SIGTERM: finishing its shard", file=sys.stderr, flush=True)
    raise RankTerminated()


__all__ = ["RankTerminated", "ShardSession", "agree"]

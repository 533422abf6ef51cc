"""`PartialRecording`: the files of a rollout while it is written, and the one crash protocol.

Every rollout appears under its final name atomically. While ``run.npz`` is written, these
files lie beside it, and nothing but this module creates, finishes or removes them:

=============================  ==================================================================
``run.npz.partial``            the data: an npz written in place, rows at their final offsets
                               (`rollrec._npz.stream`)
``run.npz.partial.json``       the sidecar: which bytes of ``.partial`` hold the rows committed
                               so far, with their CRC-32s (`rollrec._npz.sidecar`), and in its
                               ``info`` what recovery needs besides the rows: ``meta``, the
                               reward-term and link names, whether to compress
``run.npz.partial.model.npz``  the robot model, when there is one (a plain npz, replaced
                               atomically), for recovery to put in the file
``run.npz.partial.tmp``        the deflated copy, while finishing with compression
``run.npz.partial.lock``       the lease: locked by the process that owns the files now, from
                               before the first of them is created until the last is removed
                               (`rollrec.io.lease`)
=============================  ==================================================================

One owner at a time. A recording, a one-shot write and a recovery each hold the lease
(`rollrec.io.lease`: an OFD lock, or ``flock``, on ``.partial.lock``) for as long as they touch
these files, and the sidecar names the recording's `Owner` (pid, host, start time) from its
first write. Whoever else asks gets `RecordingState.LIVE` and "being recorded (pid N on host H)"
(`holder`, `state`, `owner`): a second `Recorder` or `save` of the path, ``overwrite=True``,
``rollrec recover`` and a second recovery all refuse (`RecordingBusyError`, one line); readers
take no lock the writer could wait on. The kernel drops the lock of a killed process, so a stale
lease needs no cleanup: the recording then reads as INTERRUPTED and `recover` proceeds.

The sidecar is what makes a partial file someone's: its name is claimed first, exclusively, so
an earlier recording nobody recovered is never clobbered (`check_not_interrupted`; ``overwrite``
discards it). A one-shot write (`rollrec.io.save.save_rollout`) has no sidecar: it holds
nothing recoverable until it is renamed.

Finishing (`finish`) runs in this order, each step durable before the next, so a process
killed anywhere leaves a state `recover` completes:

1. finalise ``.partial`` in place (members slid into large holes, headers, small members,
   central directory; every move copy-then-switch, see `rollrec._npz.stream`);
2. if asked to compress, write a deflated copy to ``.partial.tmp`` (``.partial`` is only read);
3. rename the finished file to ``run.npz`` (the commit point);
4. remove ``.partial`` (if the copy was renamed), then the sidecar, then the model.

`recover` reads the states this leaves: sidecar and ``.partial`` (redo from 1; a stale
``.partial.tmp`` is removed), sidecar without ``.partial`` (finished: remove the sidecar),
``.partial`` without sidecar (a one-shot write that never finished: nothing to recover).

Who asks: `rollrec.engine.Recorder` (begin, commit through the stream, finish, release, the
failure message), `rollrec.io.save.save_rollout`, ``rollrec recover`` (`rollrec.io.recovery`),
the readers (`RecordingState`: "being recorded (pid N on host H)" or "an interrupted recording
of it exists"). A reader following a live recording starts from the same paths, `owner` and
the sidecar's committed rows.
"""

from __future__ import annotations

import contextlib
import enum
import io
import json
import os
import warnings
import zipfile
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rollrec._npz import faults
from rollrec._npz.compress import compress_npz
from rollrec._npz.files import fsync_dir, replace_small_file
from rollrec._npz.stream import MemberSpec, NpzStreamWriter
from rollrec.format.errors import RolloutFormatError
from rollrec.format.meta import encode_meta
from rollrec.format.model import MODEL_KEYS
from rollrec.io import lease as _lease
from rollrec.io.lease import Holder, Owner
from rollrec.io.model import model_members, read_model
from rollrec.model.robot import RobotModel

PARTIAL_SUFFIX = ".partial"
LAYOUT_SUFFIX = ".partial.json"
REWRITE_SUFFIX = ".partial.tmp"
MODEL_SUFFIX = ".partial.model.npz"
LOCK_SUFFIX = ".partial.lock"


class RecordingState(enum.Enum):
    """What the files at a rollout's path say (`PartialRecording.state`)."""

    #: Neither the rollout nor a recording of it.
    ABSENT = "absent"
    #: A sidecar exists and no process records it: a recording that was interrupted (killed,
    #: crashed, failed: abandoned by its owner) waits for ``rollrec recover`` (which may be
    #: running now: `holder`). A reader tells it from LIVE by the lease alone, writing nothing.
    INTERRUPTED = "interrupted"
    #: A process records it now: it holds the lease (`PartialRecording.owner` names it).
    LIVE = "live"
    #: The rollout exists and no recording of it is in progress or interrupted.
    FINISHED = "finished"


class RecordingBusyError(FileExistsError):
    """Another process owns the recording's files now (it records or recovers them): nothing
    here finishes, replaces or recovers them. ``holder`` says who (`rollrec.io.lease.Holder`)."""

    def __init__(self, message: str, holder: Holder):
        super().__init__(message)
        self.holder = holder

    def __str__(self) -> str:
        return str(self.args[0])


def partial_paths(path: str | os.PathLike) -> tuple[str, str]:
    """``(data, sidecar)`` paths used while ``path`` is being written."""
    p = os.fspath(path)
    return p + PARTIAL_SUFFIX, p + LAYOUT_SUFFIX


def static_members(meta: Mapping[str, Any], rew_term_names, link_names=None, model: RobotModel | None = None
                   ) -> dict[str, np.ndarray]:
    """The non-per-step members: ``meta`` JSON, the name arrays (unicode, never object) and the
    robot model's members when there is one (`rollrec.io.model`)."""
    small = {"rew_term_names": np.asarray(list(rew_term_names), dtype=str).reshape(-1)}
    if link_names is not None:
        small["link_names"] = np.asarray(list(link_names), dtype=str).reshape(-1)
    if model is not None:
        members, model_meta = model_members(model, None if link_names is None else list(link_names))
        small.update(members)
        meta = {**meta, **model_meta}
    small["meta"] = encode_meta(meta)
    return small


def finish(writer: NpzStreamWriter, small: Mapping[str, np.ndarray], num_rows: int, path: str, compress: bool) -> Path:
    """Finalise ``writer`` with ``num_rows`` rows and make it ``path`` (steps 1-4 of the module
    docstring; the model kept beside a recording is `PartialRecording.finish`'s to remove)."""
    final = os.fspath(path)
    writer.finalize(small, num_rows)
    source = writer.path
    if compress:
        tmp = final + REWRITE_SUFFIX
        try:
            compress_npz(writer.path, tmp, sync=writer.durable)
        except BaseException:
            _remove(tmp)
            raise
        source = tmp
    writer.close()
    try:
        os.replace(source, final)
    except BaseException:
        if source != writer.path:
            _remove(source)
        raise
    if writer.durable:
        fsync_dir(final)
    faults.point("finish.renamed")
    if source != writer.path:
        _remove(writer.path)
        faults.point("finish.partial_removed")
    if writer.layout_path is not None:
        _remove(writer.layout_path)
        if writer.durable:
            fsync_dir(final)
        faults.point("finish.sidecar_removed")
    return Path(final)


def _remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


class PartialRecording:
    """The partial files of the rollout at ``path`` (its final name) and what may be done with
    them: begin a recording, finish it, release it after a failure, recover it after a crash.

    One object per recording (or per recovery); ``stream`` is the `NpzStreamWriter` of the data
    file once `begin` (or `recover`) opened it. Not thread-safe, except that `describe` may run
    on any thread (the stream serialises what it is given).
    """

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        self.data_path, self.sidecar_path = partial_paths(self.path)
        self.model_path = self.path + MODEL_SUFFIX
        self.rewrite_path = self.path + REWRITE_SUFFIX
        self.lock_path = self.path + LOCK_SUFFIX
        self.stream: NpzStreamWriter | None = None
        self._lease: _lease.Lease | None = None
        self._owner: Owner | None = None

    @classmethod
    def of(cls, path: str | os.PathLike) -> PartialRecording:
        """The recording of ``path`` named by its final name (``run.npz``) or by one of its partial
        files (``run.npz.partial``, ``run.npz.partial.json``, ``.partial.tmp``, ``.partial.lock``, ...)."""
        p = os.fspath(path)
        for suffix in (LAYOUT_SUFFIX, REWRITE_SUFFIX, LOCK_SUFFIX, MODEL_SUFFIX, PARTIAL_SUFFIX):
            if p.endswith(suffix):
                return cls(p[: -len(suffix)])
        return cls(p)

    # ---- what the files say -------------------------------------------------------------------
    def state(self) -> RecordingState:
        """`RecordingState` of the path: LIVE while a process records it (`holder`); else
        INTERRUPTED while a sidecar exists (even beside a finished file: killed between the rename
        and removing it), else FINISHED if the rollout exists. Takes no lock."""
        holder = self.holder()
        if holder is not None and holder.role == "recording":
            return RecordingState.LIVE
        if os.path.lexists(self.sidecar_path):
            return RecordingState.INTERRUPTED
        return RecordingState.FINISHED if os.path.lexists(self.path) else RecordingState.ABSENT

    @classmethod
    def state_of(cls, path: str | os.PathLike) -> RecordingState:
        """`state` of the recording of ``path`` (any name `of` takes)."""
        return cls.of(path).state()

    def owner(self) -> Owner | None:
        """The process that began the recording, as the sidecar names it (written when the
        recording begins); None without a sidecar, or one that names none (an older rollrec's,
        or one caught before its first write)."""
        doc = self._sidecar_doc()
        return Owner.from_json(doc.get("info", {}).get("owner")) if doc is not None else None

    def holder(self) -> Holder | None:
        """Who owns the files now: the process holding the lease (``role`` ``"recording"`` or
        ``"recovery"``), or None when nobody does (a finished or an interrupted recording). This
        process's own lease counts as nobody's. Where the file system takes no locks, the
        sidecar's owner is asked instead (see `rollrec.io.lease`): a recording whose process runs
        (or, on another host, might) is held. Takes no lock the holder could wait on."""
        if self._lease is not None:
            return None
        try:
            holder = _lease.probe(self.lock_path)
        except _lease.LocksUnsupported:
            holder = None
        else:
            if holder is not None:
                return holder if holder.owner is not None else Holder(holder.role, self.owner())
        owner, running = self._unlocked_owner()
        return Holder("recording", owner) if owner is not None and running is not False else None

    def _unlocked_owner(self) -> tuple[Owner | None, bool | None]:
        """``(owner, whether it runs)`` of a recording begun without a lock (a file system that
        takes none), else ``(None, False)``: with a lock, an unlocked file says it stopped."""
        doc = self._sidecar_doc()
        owner_doc = doc.get("info", {}).get("owner") if doc is not None else None
        owner = Owner.from_json(owner_doc)
        if owner is None or owner_doc.get("lease", True):
            return None, False
        if owner.pid == os.getpid() and owner.host == _lease.this_host():
            return owner, _lease.held_here(self.lock_path)  # this process: released after a failure, or not
        return owner, _lease.process_running(owner)

    def _sidecar_doc(self) -> dict | None:
        try:
            with open(self.sidecar_path, "rb") as f:
                doc = json.loads(f.read(1 << 24) or b"null")
        except (OSError, ValueError):
            return None
        return doc if isinstance(doc, dict) and isinstance(doc.get("info", {}), dict) else None

    @staticmethod
    def describe_holder(holder: Holder) -> str:
        """``being recorded (pid N on host H)`` or ``being recovered by pid N on host H``."""
        who = holder.owner.describe() if holder.owner is not None else "another process"
        return f"being recovered by {who} right now" if holder.role == "recovery" else f"being recorded ({who})"

    def busy_message(self, holder: Holder) -> str:
        """One line saying who owns the files now (see `holder`)."""
        return f"{self.path}: {self.describe_holder(holder)}"

    def check_not_interrupted(self, *, overwrite: bool = False) -> None:
        """Raise FileExistsError if an interrupted recording of the path waits to be recovered,
        and `RecordingBusyError` (a FileExistsError) if another process records or recovers it.

        With ``overwrite`` the caller chose to discard an interrupted one; `begin` then replaces
        its files. A live one is never discarded.
        """
        holder = self.holder()
        if holder is not None:
            raise RecordingBusyError(
                self.busy_message(holder) + ("; overwrite=True never replaces a recording in progress" if overwrite
                                             else "; pick another path, or wait until it finishes"), holder)
        if not overwrite and self.state() is RecordingState.INTERRUPTED:
            raise FileExistsError(
                f"{self.path}: an interrupted recording of this file was never recovered "
                f"({os.path.basename(self.data_path)}); run `rollrec recover {self.path}` to keep its steps, "
                "or pass overwrite=True to discard it"
            )

    # ---- recording ----------------------------------------------------------------------------
    def begin(self, members: Sequence[MemberSpec], *, info: Mapping[str, Any] | None = None, overwrite: bool = False,
              durable: bool = True, variable: Collection[str] = (), direct: bool | None = None,
              open_ended: bool = False) -> NpzStreamWriter:
        """Claim the sidecar's name, create the data file and lay its ``members`` out; returns the
        stream the rows are appended to and committed through. ``info``: what `describe` sets
        (recovery needs it); the other options are `NpzStreamWriter`'s. Raises FileExistsError
        for a sidecar nobody recovered unless ``overwrite``."""
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        self._take_lease("recording")
        try:
            self.check_not_interrupted(overwrite=overwrite)  # again, now that nobody else can begin
            self.stream = NpzStreamWriter(
                self.data_path, members, layout_path=self.sidecar_path, recovery_info=self._with_owner(info or {}),
                overwrite=overwrite, durable=durable, variable=variable, direct=direct, open_ended=open_ended,
            )
        except BaseException:
            self._drop_lease()
            raise
        return self.stream

    def begin_one_shot(self, members: Sequence[MemberSpec], *, overwrite: bool = False) -> NpzStreamWriter:
        """Create the data file of a write that is finished in the same call (no sidecar: it holds
        nothing recoverable until it is renamed). Holds the lease until `finish` or `abort`.
        An interrupted recording of the path is an error (FileExistsError), or with ``overwrite``
        discarded."""
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        self._take_lease("recording")
        try:
            self.check_not_interrupted(overwrite=overwrite)
            if os.path.lexists(self.sidecar_path):  # an interrupted recording the caller discards
                for stale in (self.data_path, self.sidecar_path, self.sidecar_path + ".tmp", self.model_path):
                    _remove(stale)
            self.stream = NpzStreamWriter(self.data_path, members)
        except BaseException:
            self._drop_lease()
            raise
        return self.stream

    # ---- the lease ----------------------------------------------------------------------------
    @property
    def holds_lease(self) -> bool:
        """Whether this object holds the lease now (from `begin` until `finish`/`release`)."""
        return self._lease is not None

    def _take_lease(self, role: str) -> None:
        """Hold the lease for ``role``, or raise `RecordingBusyError` naming who holds it."""
        if self._lease is not None:
            return
        self._owner = Owner.this_process()
        got = _lease.acquire(self.lock_path, role, self._owner)
        if isinstance(got, Holder):
            holder = got if got.owner is not None else Holder(got.role, self.owner())
            what = ("another recovery cannot run at the same time" if role == "recovery" and holder.role == "recovery"
                    else "it is not interrupted: nothing to recover" if role == "recovery"
                    else "pick another path, or wait until it finishes")
            raise RecordingBusyError(f"{self.busy_message(holder)}; {what}", holder)
        self._lease = got

    def _drop_lease(self) -> None:
        if self._lease is not None:
            lease, self._lease = self._lease, None
            lease.release()

    def _with_owner(self, info: Mapping[str, Any]) -> dict[str, Any]:
        """``info`` with this recording's owner, and whether its lease is a lock (see `holder`)."""
        owner = self._owner or Owner.this_process()
        locked = self._lease is None or self._lease.locked
        return {**info, "owner": {**owner.to_json(), "lease": locked}}

    @staticmethod
    def recovery_info(meta: Mapping[str, Any], rew_term_names: Sequence[str], link_names: Sequence[str] | None,
                      compress: bool) -> dict[str, Any]:
        """The sidecar's ``info``: what `recover` needs besides the rows."""
        return {"meta": meta, "rew_term_names": list(rew_term_names),
                "link_names": None if link_names is None else list(link_names), "compress": compress}

    def describe(self, info: Mapping[str, Any]) -> None:
        """Replace the sidecar's ``info`` (see `recovery_info`; written with the next commit)."""
        self.stream.set_recovery_info(self._with_owner(info))

    @property
    def committed_rows(self) -> int:
        """Rows the sidecar names as on disk (0 before `begin`)."""
        return self.stream.committed_rows if self.stream is not None else 0

    def keep_model(self, members: Mapping[str, np.ndarray] | None, meta: Mapping[str, Any] | None = None) -> None:
        """Keep the model's ``members`` (and its ``meta`` entries) beside the data for `recover`;
        None drops a kept one (a discarded recording's model must not be recovered with this one).
        A model that cannot be written is only warned about: the file still gets it at `finish`."""
        if members is None:
            _remove(self.model_path)
            return
        buf = io.BytesIO()
        np.savez(buf, **members, model_meta=encode_meta(dict(meta or {})))
        try:
            replace_small_file(self.model_path, buf.getvalue())
        except OSError as exc:
            warnings.warn(f"{self.path}: the robot model could not be kept for recovery ({exc}); "
                          "it is still written when the recording closes", stacklevel=3)

    def kept_model(self) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
        """The members and meta entries `keep_model` wrote, or None when there are none (or they
        are unreadable: a model is not worth failing a recovery for)."""
        if not os.path.exists(self.model_path):
            return None
        try:
            with np.load(self.model_path, allow_pickle=False) as z:
                members = {k: z[k] for k in z.files if k in MODEL_KEYS}
                meta = json.loads(str(z["model_meta"][()]))
        except (OSError, ValueError, KeyError, zipfile.BadZipFile):
            return None
        return members, meta

    def finish(self, small: Mapping[str, np.ndarray], rows: int, compress: bool) -> Path:
        """Finish the stream with ``rows`` rows and ``small`` (`static_members`) as the rollout at
        the path (the steps of the module docstring), then drop the model kept for recovery."""
        result = finish(self.stream, small, rows, self.path, compress)
        if self.stream.layout_path is not None:
            _remove(self.model_path)
        self._drop_lease()  # every partial file is gone
        return result

    def release(self) -> None:
        """Close the data file after a failure (or after `finish`), leaving what `recover` needs:
        the model kept beside it goes only when no sidecar is left to recover with it. The lease
        goes last: from then on the recording reads as INTERRUPTED (or FINISHED)."""
        try:
            if self.stream is not None:
                self.stream.close()
            if not os.path.exists(self.sidecar_path):
                _remove(self.model_path)
        finally:
            self._drop_lease()

    def abort(self) -> None:
        """Close and delete the data file (and the sidecar): for a write that holds nothing worth
        recovering."""
        try:
            if self.stream is not None:
                self.stream.abort()
        finally:
            self._drop_lease()

    def failure_message(self, exc: BaseException) -> str:
        """One line saying what failed and whether `recover` can keep the committed steps."""
        cause = exc.__cause__ if isinstance(exc, RuntimeError) and exc.__cause__ is not None else exc
        what = f"writing {self.path} failed: {type(cause).__name__}: {cause}"
        if not os.path.exists(self.sidecar_path):
            return f"{what}; no partial file is left"
        return (
            f"{what}; the {self.committed_rows} steps committed to {os.path.basename(self.data_path)} before the "
            f"failure are kept: run `rollrec recover {self.path}`"
        )

    # ---- after a crash ------------------------------------------------------------------------
    def recover(self, *, force: bool = False) -> Path:
        """Turn the partial file of an interrupted recording into a valid rollout at the path.

        The rows the recorder had committed to disk are kept, after checking them against the
        CRC-32s the sidecar recorded; ``meta["recovered"]`` is set. A recording killed after its
        final rename is only tidied (its sidecar removed). Returns the path. Leaves no temporary
        file behind, also when it fails.

        Holds the lease while it works: a recording in progress, or another recovery running, is
        refused with `RecordingBusyError` (nothing is touched). ``force`` recovers a recording
        whose owner cannot be asked: made on another host, on a file system without locks (see
        `rollrec.io.lease`); it never overrides a held lock.

        Raises FileNotFoundError when there is nothing to recover, and `RolloutFormatError` when
        the sidecar is unusable or the committed rows do not match their CRCs.
        """
        self._take_lease("recovery")
        try:
            owner, running = self._unlocked_owner()
            if owner is not None and (running or (running is None and not force)):
                how = ("its process still runs" if running else
                       "it was made on another host on a file system without locks, so whether its process still "
                       "runs cannot be told from here: recover it on that host, or pass --force (force=True) "
                       "once it has stopped")
                raise RecordingBusyError(f"{self.path}: being recorded ({owner.describe()}): {how}",
                                         Holder("recording", owner))
            try:
                return self._recover()
            except OSError as exc:  # e.g. a full disk: say which file, and that nothing was lost
                if isinstance(exc, (FileNotFoundError, FileExistsError)):
                    raise
                error = OSError(f"{self.path}: recovery failed ({exc.strerror or exc}); the recording is still "
                                f"recoverable: fix that and run `rollrec recover {self.path}` again")
                error.errno = exc.errno
                raise error from exc
        finally:
            self._drop_lease()

    def _recover(self) -> Path:
        p, data_path, layout_path = self.path, self.data_path, self.sidecar_path
        for stale in (self.rewrite_path, layout_path + ".tmp"):  # left by a process killed mid-write
            _remove(stale)
        name = os.path.basename(layout_path)
        if not os.path.lexists(layout_path):
            if os.path.lexists(data_path):
                raise RolloutFormatError(
                    f"{data_path}: no sidecar ({name}) describes it: it was written in one go (save_rollout) or was "
                    "being deleted when the process died, and holds nothing recoverable; delete it"
                )
            if os.path.exists(p):  # e.g. a recovery that ran at the same time finished it first
                raise FileNotFoundError(f"{p}: nothing to recover: the file is complete (no {name})")
            raise FileNotFoundError(f"{p}: no interrupted recording to recover (no {name})")
        if not os.path.lexists(data_path):
            _remove(layout_path)
            if os.path.exists(p):  # killed between the final rename and removing the sidecar
                return Path(p)
            raise FileNotFoundError(f"{p}: nothing to recover: the recording's data file {os.path.basename(data_path)} "
                                    "is gone")
        if os.path.getsize(layout_path) == 0:  # killed between claiming the names and writing the layout
            _remove(data_path)
            _remove(layout_path)
            raise FileNotFoundError(f"{p}: nothing to recover: the recording was killed before it wrote a step")
        self.stream, doc = NpzStreamWriter.reopen(data_path, layout_path)
        try:
            return self.finish(*self._recovered_contents(doc), bool(doc.get("info", {}).get("compress", False)))
        finally:
            self.stream.close()

    def _recovered_contents(self, doc: Mapping[str, Any]) -> tuple[dict[str, np.ndarray], int]:
        """``(small members, rows)`` of the recovered file, from the sidecar's ``info`` and the kept model."""
        info = doc.get("info", {})
        if "meta" not in info:
            raise RolloutFormatError(f"{self.sidecar_path}: the sidecar holds no meta; nothing to recover")
        rows = self.stream.committed_rows
        meta = dict(info["meta"], num_steps=rows, recovered=True)
        link_names = info.get("link_names")
        model = None
        kept = self.kept_model()  # the robot model the recorder kept beside the partial file
        if kept is not None:
            model = read_model(kept[0], {**meta, **kept[1]}, link_names, self.model_path)
        return static_members(meta, info.get("rew_term_names", []), link_names, model), rows


__all__ = ["Owner", "PartialRecording", "RecordingBusyError", "RecordingState", "finish", "partial_paths",
           "static_members"]

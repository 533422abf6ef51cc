"""The shard files of a sharded rollout on disk: which are readable, what they hold, recovery.

A shard counts as present when its file opens as format v1 and its ``meta["shard"]`` matches the
manifest (run id, rank, env range); anything else (no file, a file of another recording, a
damaged file, a path that leaves the directory) makes it missing, with a note saying why; a rank
still recording is missing and ``live`` (its `PartialRecording` holds the lease). See
`rollrec.format.manifest` for the layout.

Every shard path is resolved (symlinks followed) and must stay inside the directory's real path,
for reads and for what ``rollrec recover`` writes, renames and removes (`shard_path`).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rollrec.format.errors import RolloutFormatError
from rollrec.format.manifest import MANIFEST_NAME, Manifest, ShardEntry, shard_file_name
from rollrec.io.sharded.manifest import read_manifest, write_manifest
from rollrec.io.lease import Holder
from rollrec.io.partial import PARTIAL_SUFFIX, PartialRecording, RecordingBusyError, RecordingState
from rollrec.io.reader import Rollout, open_file

_SHARD_FILE = re.compile(r"^rank-(\d+)\.npz$")


@dataclass
class ShardState:
    """One shard as found on disk: ``rollout`` is open when the shard is present."""

    entry: ShardEntry
    path: Path
    rollout: Rollout | None
    note: str | None = None
    partial: bool = False  # an interrupted recording of it exists (``rollrec recover`` finishes it)
    live: Holder | None = None  # the process recording it (or recovering it) now

    @property
    def present(self) -> bool:
        return self.rollout is not None

    @property
    def num_steps(self) -> int:
        return self.rollout.T if self.rollout is not None else 0

    def close(self) -> None:
        if self.rollout is not None:
            self.rollout.close()


#: The names beside a shard file that belong to it (its partial files and its lease).
_SHARD_NAMES = ("", PARTIAL_SUFFIX, PARTIAL_SUFFIX + ".json", PARTIAL_SUFFIX + ".lock")


def list_directory(directory: str | os.PathLike) -> dict[str, bool]:
    """``{name: is a symlink}`` of the entries of ``directory`` (one scan, for manifests naming
    many shards: most of them need no other system call)."""
    with os.scandir(directory) as it:
        return {e.name: e.is_symlink() for e in it}


def shard_path(directory: str | os.PathLike, file: str, *, listing: dict[str, bool] | None = None) -> Path:
    """``directory / file`` once resolved (symlinks followed, also of the partial files beside it),
    or `RolloutFormatError` when that leaves the directory's real path. ``listing``
    (`list_directory`) spares the checks of plain names that are no symlink."""
    root = os.path.realpath(directory)
    path = Path(root) / file
    if listing is not None and "/" not in file and not any(listing.get(file + x, False) for x in _SHARD_NAMES):
        return path  # a plain name in the directory, and none of its files is a symlink
    for p in (path, *(Path(str(path) + suffix) for suffix in _SHARD_NAMES[1:3])):
        real = os.path.realpath(p)
        if os.path.commonpath([root, real]) != root:
            raise RolloutFormatError(
                f"{Path(directory) / file}: resolves to {real}, outside the directory {root} (a symlink?); "
                "a shard is only read or written inside its rollout's directory"
            )
    return path


def open_shards(directory: Path, entries: list[ShardEntry], run_id: str) -> list[ShardState]:
    """`open_shard` of every entry, the directory listed once (see `list_directory`)."""
    listing = list_directory(directory)
    return [open_shard(directory, e, run_id, listing=listing) for e in entries]


def open_shard(directory: Path, entry: ShardEntry, run_id: str, *, listing: dict[str, bool] | None = None) -> ShardState:
    """Open ``entry``'s file if it is a shard of recording ``run_id``; else say why it is missing.
    ``listing`` (`list_directory`): a shard none of whose files is listed is missing at once."""
    if listing is not None and "/" not in entry.file and not any(entry.file + x in listing for x in _SHARD_NAMES):
        return ShardState(entry, directory / entry.file, None, entry.note or "no such file")
    try:
        path = shard_path(directory, entry.file, listing=listing)
    except RolloutFormatError as exc:
        return ShardState(entry, directory / entry.file, None, f"refused: {exc}")
    recording = PartialRecording(path)
    live = recording.holder()
    partial = live is None and recording.state() is RecordingState.INTERRUPTED
    if not path.exists():
        note = entry.note or "no such file"
        if live is not None:
            note = f"no file yet: {recording.describe_holder(live)}"
        elif partial:
            note += f"; an interrupted recording of it exists: run `rollrec recover {directory}`"
        return ShardState(entry, path, None, note, partial, live)
    try:
        r = open_file(path)
    except (RolloutFormatError, OSError) as exc:
        return ShardState(entry, path, None, f"unreadable: {exc}", partial)
    shard = r.meta.get("shard") or {}
    want = {"run_id": run_id, "rank": entry.rank, "env_offset": entry.env_offset, "num_envs": entry.num_envs}
    got = {k: shard.get(k) for k in want}
    if got != want or entry.num_envs != r.N:
        r.close()
        if got["run_id"] != run_id:
            why = f"belongs to another recording (run id {got['run_id']}, the manifest's is {run_id})"
        else:
            why = f"does not match the manifest (file: {got}, N={r.N}; manifest: {want})"
        return ShardState(entry, path, None, why, partial)
    return ShardState(entry, path, r, None, partial)


def shard_facts(r: Rollout) -> dict[str, Any]:
    """What a shard file holds, as the manifest and the cross-shard checks need it (JSON-ready)."""
    return {
        "num_steps": r.T,
        "num_envs": r.N,
        "dt": r.dt,
        "env_name": r.env_name,
        "fields": {k: {"dtype": r[k].dtype.str, "shape": list(r[k].shape[2:])} for k in r.step_keys},
        "reward_term_names": r.reward_term_names,
        "link_names": r.link_names,
        "recovered": bool(r.meta.get("recovered", False)),
    }


def check_consistent(named_facts: list[tuple[str, dict[str, Any]]]) -> None:
    """Raise `RolloutFormatError` unless every shard holds the same fields, dtypes, shapes, dt and names.

    ``named_facts``: ``(file name, shard_facts(...))`` of the present shards.
    """
    if not named_facts:
        return
    first_name, first = named_facts[0]
    for name, facts in named_facts[1:]:
        for key in ("fields", "dt", "reward_term_names", "link_names"):
            if facts[key] != first[key]:
                a, b = first[key], facts[key]
                if key == "fields":
                    diff = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
                    a, b = {k: a.get(k) for k in diff}, {k: b.get(k) for k in diff}
                raise RolloutFormatError(
                    f"shards disagree on {key}: {first_name} has {a}, {name} has {b}; "
                    "every rank must record the same fields with the same dtypes and shapes"
                )


def apply_states(manifest: Manifest, states: list[ShardState], recovered: set[str] = frozenset()) -> Manifest:
    """Update ``manifest``'s statuses, steps, fields and state from the shards found on disk."""
    present = [s for s in states if s.present]
    for s in states:
        e = s.entry
        if s.present:
            was_recovered = e.file in recovered or bool(s.rollout.meta.get("recovered", False))
            e.status, e.num_steps = ("recovered" if was_recovered else "complete"), s.num_steps
            e.note = f"recovered: the {s.num_steps} steps flushed before its rank stopped" if was_recovered else None
        else:
            e.status, e.num_steps, e.note = "missing", None, s.note
    if present:
        facts = shard_facts(present[0].rollout)
        manifest.fields = facts["fields"]
        manifest.num_steps = max(max(s.num_steps for s in present), manifest.num_steps or 0)
    manifest.state = "complete" if all(e.status == "complete" for e in manifest.shards) else "incomplete"
    return manifest


def _candidate_files(directory: Path) -> list[str]:
    names = set()
    for p in directory.iterdir():
        name = p.name.removesuffix(PARTIAL_SUFFIX)
        if _SHARD_FILE.match(name):
            names.add(name)
    return sorted(names)


def rebuild_manifest(directory: Path) -> Manifest:
    """A manifest for ``directory`` built from its shard files' ``meta["shard"]`` (the manifest was lost)."""
    found: dict[str, dict[str, Any]] = {}
    for name in _candidate_files(directory):
        try:
            path = shard_path(directory, name)
        except RolloutFormatError:
            continue
        if not path.exists():
            continue
        try:
            with open_file(path) as r:
                shard, dt, env_name = r.meta.get("shard"), r.dt, r.env_name
        except (RolloutFormatError, OSError):
            continue
        if isinstance(shard, dict) and "run_id" in shard and "layout" in shard:
            found.setdefault(shard["run_id"], dict(shard, dt=dt, env_name=env_name))
    if not found:
        raise FileNotFoundError(f"{directory}: no {MANIFEST_NAME} and no readable shard file to rebuild it from")
    if len(found) > 1:
        raise RolloutFormatError(f"{directory}: shard files of {len(found)} recordings (run ids {sorted(found)}); keep one")
    (run_id, shard), = found.items()
    layout = [(int(o), int(n)) for o, n in shard["layout"]]
    hosts = shard.get("hosts") or [None] * len(layout)
    entries = [ShardEntry(r, shard_file_name(r), o, n, host=hosts[r]) for r, (o, n) in enumerate(layout)]
    return Manifest(run_id=run_id, world_size=len(layout), num_envs=sum(n for _, n in layout), dt=float(shard["dt"]),
                    shards=entries, env_name=shard["env_name"])


def recover_directory(directory: str | os.PathLike, *, force: bool = False) -> Path:
    """Make a sharded rollout whose ranks were interrupted readable and bring its manifest up to date.

    Each shard without a finished file but with a partial one is finished with the steps its rank
    had flushed (its `PartialRecording`); a lost or damaged manifest is rebuilt from the shard files. Shards with
    neither stay missing. Returns the directory. Shards whose ranks still record (they hold the
    lease) are left alone, and so is the manifest (a live rank 0 writes it when it closes):
    `RecordingBusyError` then names them, after the others were recovered. ``force``: see
    `PartialRecording.recover`.
    """
    directory = Path(directory)
    try:
        manifest: Manifest | None = read_manifest(directory)
    except (FileNotFoundError, RolloutFormatError):  # lost or damaged: rebuilt from the shards below
        manifest = None
    files = [e.file for e in manifest.shards] if manifest is not None else _candidate_files(directory)
    recovered, notes, live = set(), {}, {}
    listing = list_directory(directory)
    for file in files:
        if "/" not in file and not any(file + x in listing for x in _SHARD_NAMES):
            continue  # no file of this shard at all
        try:
            path = shard_path(directory, file, listing=listing)
        except RolloutFormatError as exc:
            notes[file] = f"refused: {exc}"
            continue
        recording = PartialRecording(path)
        holder = recording.holder()
        if holder is not None:
            live[file] = recording.describe_holder(holder)
            continue
        if not path.exists() and recording.state() is RecordingState.INTERRUPTED:
            try:
                recording.recover(force=force)
                recovered.add(file)
            except RecordingBusyError as exc:  # it began recording, or another recovery, meanwhile
                live[file] = PartialRecording.describe_holder(exc.holder)
            except (RolloutFormatError, OSError) as exc:
                notes[file] = f"not recoverable: {exc}"
    if live:
        done = f"; recovered {', '.join(sorted(recovered))}" if recovered else ""
        raise RecordingBusyError(
            f"{directory}: {_ranks_text(live)}{done}; the manifest is left to the recording ranks: run `rollrec "
            f"recover {directory}` again once they stop",
            Holder("recording", None),
        )
    if manifest is None:
        manifest = rebuild_manifest(directory)
    states = open_shards(directory, manifest.shards, manifest.run_id)
    try:
        for s in states:
            if not s.present and s.entry.file in notes:
                s.note = notes[s.entry.file]
        check_consistent([(s.entry.file, shard_facts(s.rollout)) for s in states if s.present])
        write_manifest(directory, apply_states(manifest, states, recovered))
    finally:
        for s in states:
            s.close()
    return directory


def _ranks_text(live: dict[str, str], most: int = 8) -> str:
    """``rank-00000.npz being recorded (pid N on host H), ...`` for the first ``most`` shards, then a count."""
    items = [f"{file} {what}" for file, what in sorted(live.items())]
    more = f" and {len(items) - most} more shards" if len(items) > most else ""
    return ", ".join(items[:most]) + more


def live_shards_message(directory: str | os.PathLike, states: list[ShardState]) -> str | None:
    """One line naming the shards recorded (or recovered) right now, or None when none is."""
    live = {s.entry.file: PartialRecording.describe_holder(s.live) for s in states if s.live is not None}
    return f"{directory}: {_ranks_text(live)}" if live else None


__all__ = ["ShardState", "apply_states", "check_consistent", "list_directory", "live_shards_message", "open_shard",
           "open_shards", "recover_directory", "shard_facts", "shard_path"]

"""The JSON sidecar beside an npz being written in place: what recovery trusts, and nothing else.

One JSON object, replaced atomically (`rollrec._npz.files.replace_small_file`) whenever it changes::

    {"format": "rollrec-partial", "version": 2, "data_path": "run.npz.partial", "align": 64,
     "created": <unix time>, "committed_rows": R, "committed_crc": {member: CRC-32 of its R rows},
     "variable_rows": {member: rows},
     "members": [{"name", "dtype", "row_shape", "capacity", "header_offset", "data_offset"}, ...],
     "collapse": {"size": S, "ranges": [[offset, length], ...]},
     "info": {...}}

``info`` is the caller's (for a rollout: `rollrec.io.partial`'s meta, names and compress flag),
opaque JSON here, serialised by the thread that set it.
``variable_rows`` names the committed rows of the members that hold their own number of rows
(see "Variable members" in `rollrec._npz.stream`); the others hold R. A sidecar without it
has none. (A rollrec that predates the key would check a variable member's first R rows against
its CRC, and refuse them: never recover them wrong.)

``collapse`` is present only while the writer removes the holes between members
(``fallocate(COLLAPSE_RANGE)``, see "Recordings of unknown length" in `rollrec._npz.stream`): the
members' offsets are those before the first range is removed, the ranges are removed in the order
listed (highest first, so each is also where it was when the plan was made), and the file's size
tells how many were: ``S`` before any, ``S`` less the first k lengths after k.
`State.placements_at` turns that size into the members' offsets. A range never holds a byte of
rows the sidecar names, but may hold a member's local header, which is rewritten at the end
anyway: a header offset inside a removed range maps to where the range was (the writer then
places the header anew, `rollrec._npz.layout.header_before`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from rollrec.format.errors import RolloutFormatError
from rollrec._npz.layout import ALIGN, MemberSpec, Placement, after_collapse

FORMAT = "rollrec-partial"
VERSION = 2


@dataclass
class State:
    """What a sidecar says: the layout and the committed rows with their CRC-32s."""

    align: int
    created: float
    members: list[MemberSpec]
    placements: dict[str, Placement]
    committed_rows: int
    committed_crc: dict[str, int]
    variable_rows: dict[str, int]
    collapse_size: int | None = None  # the file's size before the pending collapses (None: none pending)
    collapse: tuple[tuple[int, int], ...] = ()  # (offset, length) of each, in the order they run

    def placements_at(self, file_size: int) -> dict[str, Placement] | None:
        """Where the members lie in a data file of ``file_size`` bytes: `placements` with the
        pending collapses that size says were done applied; None when the size matches no stage
        of them (the file changed after they completed, or it is not this sidecar's file)."""
        if self.collapse_size is None:
            return dict(self.placements)
        size, done = self.collapse_size, 0
        while size != file_size:
            if done == len(self.collapse):
                return None
            size -= self.collapse[done][1]
            done += 1
        removed = self.collapse[:done]
        return {name: Placement(after_collapse(p.header_offset, removed), after_collapse(p.data_offset, removed), p.capacity)
                for name, p in self.placements.items()}


def encode(
    *,
    data_path: str,
    align: int,
    created: float,
    members: Sequence[MemberSpec],
    placements: Mapping[str, Placement],
    committed_rows: int,
    committed_crc: Mapping[str, int],
    info_json: str,
    variable_rows: Mapping[str, int] | None = None,
    collapse: tuple[int, Sequence[tuple[int, int]]] | None = None,
) -> bytes:
    """The sidecar's bytes; each member's capacity is its placement's. ``collapse``: ``(file size,
    ranges)`` of the collapses about to run (see the module docstring)."""
    doc = {
        "format": FORMAT,
        "version": VERSION,
        "data_path": data_path,
        "align": align,
        "created": created,
        "members": [{**asdict(m), **asdict(placements[m.name])} for m in members],
        "committed_rows": committed_rows,
        "committed_crc": dict(committed_crc),
    }
    if variable_rows:
        doc["variable_rows"] = dict(variable_rows)
    if collapse is not None:
        doc["collapse"] = {"size": int(collapse[0]), "ranges": [[int(a), int(n)] for a, n in collapse[1]]}
    return (json.dumps(doc)[:-1] + ', "info": ' + info_json + "}").encode()


def read(layout_path: str) -> dict:
    """The sidecar's JSON document; `RolloutFormatError` if it is not one this rollrec wrote."""
    try:
        with open(layout_path, "rb") as f:
            doc = json.loads(f.read())
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise RolloutFormatError(f"{layout_path}: not a rollrec sidecar (invalid JSON)") from None
    if isinstance(doc, dict) and "placements" in doc and "format" not in doc:
        raise RolloutFormatError(
            f"{layout_path}: written by rollrec 0.1.0, whose partial files this version cannot recover safely; "
            "recover it with rollrec 0.1.0"
        )
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise RolloutFormatError(f"{layout_path}: not a rollrec sidecar")
    if doc.get("version") != VERSION:
        raise RolloutFormatError(
            f"{layout_path}: sidecar version {doc.get('version')!r}; this rollrec recovers version {VERSION}"
        )
    return doc


def decode(doc: Mapping, layout_path: str) -> State:
    """The `State` of a document `read` returned; `RolloutFormatError` if a field is missing or wrong."""
    try:
        members, placements = [], {}
        for m in doc["members"]:
            spec = MemberSpec(m["name"], np.dtype(m["dtype"]).str, tuple(int(s) for s in m["row_shape"]), int(m["capacity"]))
            members.append(spec)
            placements[spec.name] = Placement(int(m["header_offset"]), int(m["data_offset"]), int(m["capacity"]))
        return State(
            align=int(doc.get("align", ALIGN)),
            created=float(doc["created"]),
            members=members,
            placements=placements,
            committed_rows=int(doc["committed_rows"]),
            committed_crc={m.name: int(doc["committed_crc"][m.name]) for m in members},
            variable_rows=_variable_rows(doc.get("variable_rows", {}), {m.name for m in members}),
            **_collapse(doc.get("collapse")),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise RolloutFormatError(f"{layout_path}: damaged sidecar ({type(exc).__name__}: {exc})") from None


def _collapse(value: object) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"'collapse' must be an object, got {value!r:.80}")
    ranges = tuple((int(a), int(n)) for a, n in value["ranges"])
    if any(a < 0 or n <= 0 for a, n in ranges):
        raise ValueError("'collapse' holds a negative offset or an empty range")
    return {"collapse_size": int(value["size"]), "collapse": ranges}


def _variable_rows(value: object, names: set[str]) -> dict[str, int]:
    if not isinstance(value, dict) or not set(value) <= names:
        raise ValueError(f"'variable_rows' must map member names to rows, got {value!r:.80}")
    out = {str(k): int(v) for k, v in value.items()}
    if any(v < 0 for v in out.values()):
        raise ValueError("'variable_rows' holds a negative count")
    return out

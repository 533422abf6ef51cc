"""The npz machinery: reading a stored ``.npz`` safely, and writing one in place, row by row.

Nothing here knows what a rollout is (no meta, no fields, no episodes): a file is zip records
holding ``.npy`` members. Reading (`archive` on `zipdir`, `npy_header`, `inflate`) checks every
structure of an untrusted file against the file before using it. Writing (`stream` on `layout`,
`zip_records`, `sidecar`, `direct_io`, `writeback`, `files`) lays members out up front, appends
rows at their final offsets, commits them under a JSON sidecar that a crash never leaves
pointing at wrong bytes, and finalises the archive in place; `compress` deflates a finished
file; `faults` names every step for crash tests. `rollrec.io` builds rollouts on top.

Imports: numpy, the standard library, isal (optional) and `rollrec.format.errors` (the one
error every reader raises); nothing else of rollrec. This ``__init__`` imports nothing, so
``import rollrec._npz.zip_records`` loads that module alone, not the writer or direct I/O.
"""

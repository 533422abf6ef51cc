"""Sharded rollouts on disk: one file per ``torch.distributed`` rank and a ``manifest.json``.

`rollout` opens the directory as one env axis (`ShardedRollout`), `shards` finds which shard
files are present and recovers interrupted ones (each through its
`rollrec.io.partial.PartialRecording`), `manifest` reads and writes the manifest atomically.
The layout and the manifest's specification are `rollrec.format.manifest`'s. Imports: the rest
of `rollrec.io` below `rollrec.io.opening`, `rollrec.format`, `rollrec._npz`.
"""

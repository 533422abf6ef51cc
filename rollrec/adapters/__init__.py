"""Adapters: record the frameworks users run (one module per framework) through one protocol.

Env adapters (`adapt` picks one; ``RolloutRecorder(env, adapter="mjlab")`` forces one):
`IsaacLabAdapter`, `IsaacLabDirectAdapter`, `MjlabAdapter`, `ProtoMotionsAdapter`, `ProtoMotionsGenesisAdapter`, `GymVectorAdapter`,
`GenesisEnvAdapter`, `WalkerAdapter`. Pose sources for simulators without an env class, called
before each step in your own loop: `GenesisPoses`, `NewtonPoses`, `MuJoCoPoses`, `MjxPoses`.
Framework modules are imported only when an adapter needs them.
"""

from __future__ import annotations

from rollrec._lazy import lazy_exports

_EXPORTS = {
    "ADAPTERS": "rollrec.adapters.base",
    "AdapterNotFoundError": "rollrec.adapters.base",
    "BaseAdapter": "rollrec.adapters.base",
    "EnvAdapter": "rollrec.adapters.base",
    "Step": "rollrec.adapters.base",
    "adapt": "rollrec.adapters.base",
    "PoseSource": "rollrec.adapters.pose_source",
    "WalkerAdapter": "rollrec.adapters.walker",
    "IsaacLabAdapter": "rollrec.adapters.isaaclab",
    "IsaacLabDirectAdapter": "rollrec.adapters.isaaclab",
    "MjlabAdapter": "rollrec.adapters.mjlab",
    "ProtoMotionsAdapter": "rollrec.adapters.protomotions",
    "ProtoMotionsGenesisAdapter": "rollrec.adapters.protomotions_genesis",
    "GymVectorAdapter": "rollrec.adapters.gymnasium",
    "GenesisEnvAdapter": "rollrec.adapters.genesis",
    "GenesisPoses": "rollrec.adapters.genesis",
    "NewtonPoses": "rollrec.adapters.newton",
    "MuJoCoPoses": "rollrec.adapters.mujoco",
    "MjxPoses": "rollrec.adapters.mujoco",
}

__all__ = [
    "ADAPTERS",
    "AdapterNotFoundError",
    "BaseAdapter",
    "EnvAdapter",
    "GenesisEnvAdapter",
    "GenesisPoses",
    "GymVectorAdapter",
    "IsaacLabAdapter",
    "IsaacLabDirectAdapter",
    "MjlabAdapter",
    "MjxPoses",
    "MuJoCoPoses",
    "NewtonPoses",
    "PoseSource",
    "ProtoMotionsAdapter",
    "ProtoMotionsGenesisAdapter",
    "Step",
    "WalkerAdapter",
    "adapt",
]


__getattr__, __dir__ = lazy_exports("rollrec.adapters", _EXPORTS, __all__, globals())

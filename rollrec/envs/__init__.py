"""Built-in envs: `WalkerEnv`, a batched quadruped in torch, and its scripted `GaitPolicy`."""

from rollrec.envs.walker import GaitPolicy, WalkerEnv

__all__ = ["GaitPolicy", "WalkerEnv"]

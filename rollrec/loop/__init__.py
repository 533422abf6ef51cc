"""The rollout loop: runs a policy in an adapted env and records it with `rollrec.engine.Recorder`.

May import `rollrec.engine`, `rollrec.adapters`, `rollrec.io`, `rollrec.model` and `rollrec.envs`;
nothing below it imports this package.
"""

"""`PoseSource`: base pose, link poses and link names of a simulator that has no env class.

A pose source is made once from the simulator's objects and called once per step, *before*
the step, in the user's own loop::

    poses = GenesisPoses(robot)                           # or NewtonPoses, MuJoCoPoses, MjxPoses
    with Recorder(path, num_envs=N, **poses.recorder_kwargs()) as rec:
        for t in range(T):
            act = policy(obs)
            pose = poses()                                 # copies, taken before the step
            next_obs, rew, done = step(act)
            rec.record(obs=obs, act=act, rew=rew, done=done, **pose)
            obs = next_obs

``poses()`` returns ``{"base_pos": [N, 3], "base_quat": [N, 4], "link_pos": [N, L, 3],
"link_quat": [N, L, 4]}`` in ``quat_order``, on the simulator's device, owned by the caller (the
step does not change them). `recorder_kwargs` gives `Recorder` the matching ``quat_order``,
``link_names`` and ``meta``, and for MuJoCo-based sources the robot's ``model``
(`rollrec.model_from_mujoco`), so the file shows the real robot.
"""

from __future__ import annotations

from typing import Any


class PoseSource:
    """Base class: ``quat_order``, ``link_names``, ``meta``; MuJoCo-based sources also set
    ``mj_model`` and ``link_body_ids`` (the ``MjModel`` body id of each link)."""

    quat_order = "wxyz"
    mj_model: Any = None
    link_body_ids: list[int] | None = None

    def __init__(self, link_names: list[str], meta: dict[str, Any] | None = None):
        self.link_names = list(link_names)
        self.meta = dict(meta or {})

    def __call__(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        raise NotImplementedError

    def recorder_kwargs(self) -> dict[str, Any]:
        """``quat_order``, ``link_names`` and ``meta`` for `Recorder` (merge your own ``meta``), and
        ``model`` when the source has an ``MjModel``."""
        kwargs = {"quat_order": self.quat_order, "link_names": list(self.link_names), "meta": dict(self.meta)}
        if self.mj_model is not None:
            from rollrec.model.mujoco import model_from_mujoco

            kwargs["model"] = model_from_mujoco(self.mj_model, self.link_body_ids, self.link_names)
        return kwargs

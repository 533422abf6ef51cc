"""`RolloutRecorder`: run a policy in a batched env for a number of steps and record everything."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import inspect
import os
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from rollrec.adapters.base import BaseAdapter, adapt
from rollrec.engine import dist_meta
from rollrec.engine.recorder import Recorder
from rollrec.engine.serving import Serve
from rollrec.engine.shards import RankTerminated, agree
from rollrec.loop.control import PolicyControl

STOP_MODES = ("never", "any", "all")


class RolloutRecorder:
    """Record ``max_steps`` steps of every env of ``env`` under a policy, as the original tool did.

    ``env`` is an env of a framework `rollrec.adapters` knows (Isaac Lab, mjlab, ProtoMotions,
    Gymnasium, Genesis-style, the built-in `WalkerEnv`), picked by `rollrec.adapters.adapt`, or
    an adapter of your own. ``adapter`` forces one by name (``"mjlab"``, ``"isaaclab"``, ...);
    ``adapter_options`` go to its constructor (e.g. ``{"entity": "robot"}``). Per-env dones are
    recorded and the batch keeps running (finished envs are reset by the env, or by the adapter
    the way the framework's own runner does it). Each step records the pose read *before* the
    step, the state ``obs`` describes; rollrec's adapters hand over poses the step does not
    change, and the pose of an adapter of your own is copied on the device (no host sync) in
    case it is a view of simulator memory. ``stop_on``: ``"never"`` (default) runs ``max_steps``;
    ``"any"``/``"all"`` stop once any/all envs have finished an episode (this reads ``done`` on
    the host each step: one device sync per step). ``video_every=k`` records the env's
    ``render()`` every k steps into a video beside the rollout (``video_envs`` picks the envs of a
    batched render; see `Recorder.record_frame`); a render that fails stops the run with its
    error. The robot's geometry is stored with the rollout when the adapter exposes a MuJoCo
    model (``mj_model`` and ``link_body_ids``: mjlab, Gymnasium MuJoCo); pass ``model=`` (a
    `rollrec.model.RobotModel`, or None for none) to choose. ``cameras``: a callable returning
    ``{camera: images}`` of the state ``obs`` describes, called before each step (with the pose),
    whose images go to ``Recorder.record(images=...)`` (e.g. `rollrec.envs.camera.WalkerCamera`,
    `rollrec.adapters.mujoco_camera.MuJoCoCamera`). Other keyword arguments go to `Recorder`.
    """

    def __init__(
        self,
        env: Any,
        max_steps: int = 2000,
        *,
        stop_on: str = "never",
        progress: bool = True,
        video_every: int = 0,
        adapter: str | Any | None = None,
        adapter_options: dict[str, Any] | None = None,
        cameras: Callable[[], Any] | None = None,
        **recorder_kwargs: Any,
    ):
        if stop_on not in STOP_MODES:
            raise ValueError(f"stop_on must be one of {STOP_MODES}, got {stop_on!r}")
        if max_steps < 1:
            raise ValueError(f"max_steps must be at least 1, got {max_steps}")
        if adapter is not None and not isinstance(adapter, str):
            self.env = adapter
        else:
            self.env = adapt(env, adapter, **(adapter_options or {}))
        self._copy_pose = not isinstance(self.env, BaseAdapter)
        self._record_obs = getattr(self.env, "record_obs", None)
        self.video_every = int(video_every)
        self._render = getattr(self.env, "render", None) or getattr(getattr(self.env, "env", None), "render", None)
        if self.video_every and self._render is None:
            raise ValueError(f"video_every={video_every}: {type(env).__name__} has no render() to record")
        self.cameras = cameras
        self.max_steps = int(max_steps)
        self.stop_on = stop_on
        self.progress = progress
        self.recorder_kwargs = recorder_kwargs
        self.interrupted = False
        #: The live replay of the last `run` with ``serve=`` (`rollrec.engine.serving.LiveServer`), else None.
        self.server = None
        #: The live controls of the `run` under way with ``serve=`` (`rollrec.loop.control.PolicyControl`:
        #: a script may pause, step or switch the policy too), else None.
        self.control: PolicyControl | None = None

    def run(self, policy: Callable[..., Any], output_dir: str | os.PathLike = "results/rollouts", *,
            filename: str | None = None, deterministic: bool | None = None,
            serve: bool | int | str | Serve | None = None, fallback: Callable[..., Any] | None = None) -> Path:
        """Run ``policy`` (``obs -> action``) and write the rollout; returns the file's path.

        The policy gets what the framework's own loop would hand it (the adapter's
        ``policy_input``, e.g. ProtoMotions' agent-prepared TensorDict) with the adapter's
        ``policy_kwargs`` (e.g. ``deterministic=True`` for the ProtoMotions-Genesis fork). The
        action recorded is the one the env applied (``Step.act``, e.g. after a wrapper's clamp).
        Ctrl-C stops the run and finishes the file with the steps recorded so far. The file is
        ``filename`` (a plain name) or ``<env name>_<time>.npz``, with the env name reduced to
        letters, digits, ``.``, ``_`` and ``-`` so that it stays inside ``output_dir``
        (``ALE/Pong-v5`` -> ``ALE_Pong-v5``). Under torch.distributed (more than one rank) every
        rank records its envs into one sharded rollout: the directory ``<name>`` (rank 0's time
        stamp), returned on every rank. ``deterministic`` (the original recorder's flag, as its
        ``record_rollout.py`` passes it) is handed to a policy that takes a ``deterministic``
        argument; a policy without one (`make_policy`'s) is deterministic already.

        ``serve`` (True, a port, ``"host:port"``): serve the live replay of the run while it records
        (``Recorder(serve=...)``: a ``rollrec replay`` child process), with the original tool's
        live controls: ``L`` (and a button) switches the policy off and on for the selected env,
        ``Shift+L`` for every env; ``K`` pauses and resumes the simulation, ``J`` runs one step.
        An env whose policy is off gets zero actions, or ``fallback``'s (called like the policy,
        e.g. a PD controller holding a pose), and the file records per step and env whether the
        policy acted (``policy_acted``, bool ``[T, N]``). The policy still runs for every env at
        every step, so switching it off changes nothing but those envs' actions. Under
        torch.distributed rank 0 serves the whole recording, without the controls.
        """
        if isinstance(output_dir, bool):
            raise TypeError("run(policy, True): the original recorder's second argument was `deterministic`; "
                            "rollrec's is output_dir (the fork's adapter passes deterministic=True itself)")
        served = Serve.of(serve)
        if fallback is not None and served is None:
            raise ValueError("fallback= is what envs whose policy is switched off get from the live replay; it needs serve=")
        path = Path(output_dir) / self._file_name(filename)
        control = None
        if served is not None and dist_meta.world() is None:
            control = self.control = PolicyControl.create(self.env.num_envs)
            served = dataclasses.replace(served, control=control.path)
        try:
            return self._record(policy, path, deterministic, served, control, fallback)
        finally:
            if control is not None:
                control.finish()
                control.close()
                self.control = None

    def _record(self, policy: Callable[..., Any], path: Path, deterministic: bool | None, served: Serve | None,
                control: PolicyControl | None, fallback: Callable[..., Any] | None) -> Path:
        rec = Recorder(path, self.env.num_envs, **self._recorder_kwargs(), serve=served)
        bar = tqdm(total=self.max_steps * self.env.num_envs, unit="env-step", unit_scale=True, disable=not self.progress,
                   desc=f"recording {self.env.num_envs} envs", dynamic_ncols=True)
        try:
            self._loop(policy, rec, bar, {} if deterministic is None else {"deterministic": bool(deterministic)},
                       control, fallback)
        except KeyboardInterrupt:
            self.interrupted = True
            rec.update_meta(interrupted="KeyboardInterrupt")
            bar.write(f"interrupted: finishing {path} with {rec.steps} steps")
        except RankTerminated:  # SIGTERM on a rank of a sharded recording: finish the shard, then exit
            rec.update_meta(interrupted="SIGTERM")
            rec.close()  # raises RankTerminated again once the shard and the manifest are written
            raise
        finally:
            bar.close()
            self.server = rec.server
        rec.update_meta(**self.env.meta)
        if rec.steps == 0:
            raise RuntimeError("no step was recorded")
        return rec.close()

    def _file_name(self, filename: str | None) -> str:
        """``filename`` checked, or ``<env name>_<time>.npz`` (the same on every rank of a sharded run)."""
        if filename is not None and (os.path.basename(filename) != filename or filename in ("", ".", "..")):
            raise ValueError(f"filename must be a plain file name inside output_dir, got {filename!r}")
        name = filename or f"{safe_file_stem(self.env.name)}_{_dt.datetime.now().strftime('%Y%m%d_%H%M%S')}.npz"
        sharding = self.recorder_kwargs.get("sharding")
        distributed = self.recorder_kwargs.get("distributed", getattr(sharding, "distributed", None))
        if filename is None and distributed is not False:
            name = agree(name)  # every rank must name the same rollout
        return name

    def _recorder_kwargs(self) -> dict[str, Any]:
        """`Recorder` arguments: the adapter's description of the env, then the user's, then the model."""
        env = self.env
        kwargs = dict(max_steps=self.max_steps, dt=env.dt, env_name=env.name, quat_order=env.quat_order,
                      link_names=env.link_names, meta={"adapter": type(env).__name__, **env.meta})
        kwargs.update(self.recorder_kwargs)
        if "model" not in kwargs:
            kwargs["model"] = adapter_model(env)
        return kwargs

    def _loop(self, policy: Callable[..., Any], rec: Recorder, bar: Any, user_kwargs: dict[str, Any],
              control: PolicyControl | None = None, fallback: Callable[..., Any] | None = None) -> None:
        """Reset once, then per step: policy (switched off per env from the live replay), the pose
        the obs describes, the step, the record."""
        env = self.env
        policy_input = getattr(env, "policy_input", None)
        policy_kwargs = {**(getattr(env, "policy_kwargs", None) or {}), **user_kwargs}
        if policy_kwargs and not _accepts(policy, policy_kwargs):
            policy_kwargs = {}
        ended = None
        obs = env.reset()
        with torch.inference_mode():
            for step in range(self.max_steps):
                if control is not None:
                    control.wait_turn(on_pause=rec.flush)  # paused from the viewer: the last step is committed
                inp = policy_input(obs, step) if policy_input else obs
                action = policy(inp, **policy_kwargs)
                extras: dict[str, Any] = {}
                if control is not None:
                    on = control.policy_on()
                    if not on.all():
                        action = _switched(action, on, fallback(inp, **policy_kwargs) if fallback is not None else None)
                    extras = {"policy_acted": on}
                pose = self._pose()
                images = self.cameras() if self.cameras is not None else None  # the state obs describes
                out = env.step(action)
                applied = getattr(out, "act", None)
                rec.record(obs=self._record_obs(obs) if self._record_obs else obs, act=action if applied is None else applied,
                           rew=out.rew, done=out.done, truncated=out.truncated, reward_terms=out.reward_terms or None,
                           images=images, **pose, **getattr(out, "extras", {}), **extras)
                if step == 0:
                    self.server = rec.server  # started by the first record()
                if self.video_every and step % self.video_every == 0:
                    rec.record_frame(self._render())
                bar.update(env.num_envs)
                obs = out.obs
                if self.stop_on != "never":
                    ended = _update_ended(ended, out.done)
                    if bool(ended.any() if self.stop_on == "any" else ended.all()):
                        break

    def _pose(self) -> dict[str, Any]:
        """The pose the current obs describes, read before the step (copied for an adapter of the user's own)."""
        pose = {k: v for k, v in self.env.pose().items() if v is not None}
        if self._copy_pose:
            pose = {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in pose.items()}
        return pose


def _switched(action: Any, on: np.ndarray, off: Any | None) -> Any:
    """``action`` ``[N, ...]`` with the rows of the envs not ``on`` replaced by ``off``'s (zeros when None)."""
    if isinstance(action, torch.Tensor):
        mask = torch.from_numpy(on).to(action.device).view(-1, *([1] * (action.dim() - 1)))
        other = torch.zeros_like(action) if off is None else torch.as_tensor(off, dtype=action.dtype).to(action.device)
        return torch.where(mask, action, other)
    action = np.asarray(action)
    mask = on.reshape(-1, *([1] * (action.ndim - 1)))
    return np.where(mask, action, np.zeros_like(action) if off is None else np.asarray(off, action.dtype))


def _accepts(func: Callable[..., Any], kwargs: dict[str, Any]) -> bool:
    """Whether ``func`` takes these keyword arguments (by name or ``**kwargs``)."""
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):  # builtins and some C callables have no signature
        return False
    names = {p.name for p in params}
    return any(p.kind is p.VAR_KEYWORD for p in params) or set(kwargs) <= names


def adapter_model(env: Any) -> Any:
    """The `RobotModel` of an adapter: its ``robot_model()`` (e.g. Genesis' URDF), else from its
    ``mj_model`` (and ``link_body_ids``), else None.

    A model that cannot be extracted is left out with a warning: the rollout matters more."""
    mj_model = getattr(env, "mj_model", None)
    own = getattr(env, "robot_model", None)
    if mj_model is None and own is None:
        return None
    try:
        if own is not None:
            return own()
        from rollrec.model.mujoco import model_from_mujoco

        return model_from_mujoco(mj_model, getattr(env, "link_body_ids", None), getattr(env, "link_names", None))
    except Exception as exc:  # noqa: BLE001 - any failure here must not stop the recording
        warnings.warn(f"rollrec: the robot model of {type(env).__name__} was not stored ({exc})", stacklevel=2)
        return None


def safe_file_stem(name: str) -> str:
    """``name`` as a file name stem that cannot leave its folder or hide: ``../../x`` -> ``x``."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", str(name))
    stem = re.sub(r"\.{2,}", "_", stem)  # no ".." anywhere
    stem = re.sub(r"_{2,}", "_", stem).strip("._-")
    return stem or "rollout"


def _update_ended(ended: Any, done: Any) -> torch.Tensor:
    d = torch.as_tensor(done).bool()
    return d if ended is None else ended | d

"""Which per-step values can be plotted, by name, and reading them for one env.

A `Channel` is one scalar series ``[T]`` of one env: an obs dimension (named from
``meta["obs_layout"]`` when the recorder flattened a dict of observations, else ``obs[i]``), an
action dimension, a base coordinate, a link height (``link_pos[..., 2]``, named from
``link_names``) or an element of an extra member. `channel_groups` lists them from member shapes
only; `FieldCache` reads a member of the selected env once (via ``Rollout.env``) and slices
channels out of it. Plain Python, no viser.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rollrec.io.protocol import ReadableRollout

#: Members that are not plotted as fields (the reward plot and the scene show them).
_NOT_FIELDS = frozenset({"rew", "rew_terms", "done", "truncated", "base_quat", "link_quat"})


@dataclass(frozen=True)
class Channel:
    """One plottable series: element ``index`` (flat, over the member's trailing dims) of
    member ``key`` at every step; ``label`` is what the GUI shows."""

    group: str
    label: str
    key: str
    index: int


def _element_names(prefix: str, shape: tuple[int, ...]) -> list[str]:
    """``pos`` ``(3,)`` -> ``pos[0] pos[1] pos[2]``; ``()`` -> ``pos``; ``(2, 2)`` -> ``pos[0,0]`` ..."""
    if not shape:
        return [prefix]
    if len(shape) == 1:
        return [f"{prefix}[{i}]" for i in range(shape[0])]
    return [f"{prefix}[{','.join(map(str, idx))}]" for idx in np.ndindex(*shape)]


def obs_names(meta: dict, obs_dim: int) -> list[str]:
    """Names of the ``obs_dim`` obs dimensions: from ``meta["obs_layout"]`` (entries ``{name,
    start, stop, shape}``) where it covers them, ``obs[i]`` elsewhere."""
    names = [f"obs[{i}]" for i in range(obs_dim)]
    for entry in meta.get("obs_layout") or []:
        try:
            start, stop = int(entry["start"]), int(entry["stop"])
            shape = tuple(int(s) for s in entry.get("shape") or (stop - start,))
            name = str(entry["name"])
        except (KeyError, TypeError, ValueError):
            continue  # a malformed entry keeps the default names
        if not 0 <= start < stop <= obs_dim or int(np.prod(shape)) != stop - start:
            continue
        names[start:stop] = _element_names(name, shape) if stop - start > 1 else [name]
    return names


def channel_groups(rollout: ReadableRollout) -> dict[str, list[Channel]]:
    """``{group: [Channel]}`` of every plottable series of ``rollout``, groups in GUI order:
    obs, act, base, link height (when the file has links), then each extra member."""
    groups: dict[str, list[Channel]] = {}
    keys = rollout.step_keys

    def trailing(key: str) -> tuple[int, ...]:
        return tuple(int(s) for s in rollout[key].shape[2:])

    if "obs" in keys:
        dim = int(np.prod(trailing("obs")))
        groups["obs"] = [Channel("obs", n, "obs", i) for i, n in enumerate(obs_names(rollout.meta, dim))]
    if "act" in keys:
        groups["act"] = [Channel("act", n, "act", i) for i, n in enumerate(_element_names("act", trailing("act")))]
    if "base_pos" in keys:
        groups["base"] = [Channel("base", f"base {a}", "base_pos", i) for i, a in enumerate("xyz")]
    if "link_pos" in keys:
        names = rollout.link_names or []
        groups["link height"] = [Channel("link height", f"{n} height", "link_pos", 3 * i + 2)
                                 for i, n in enumerate(names)]
    for key in rollout.step_keys:  # [T, N, ...] each
        if key in groups or key in _NOT_FIELDS or key in ("obs", "act", "base_pos", "link_pos"):
            continue
        groups[key] = [Channel(key, n, key, i) for i, n in enumerate(_element_names(key, trailing(key)))]
    seen: set[str] = set()
    for group, chans in groups.items():  # labels are how users pick fields: make them unique
        for j, c in enumerate(chans):
            if c.label in seen:
                chans[j] = c = Channel(c.group, f"{group}: {c.label}", c.key, c.index)
            seen.add(c.label)
    return groups


def option(channel: Channel) -> str:
    """How the Field list offers ``channel``: its label, followed by its group when the label does not
    name it (``joint_pos[2] · obs``, ``foot height · link height``), so typing a group's name
    (``obs``, ``link``) finds its fields too."""
    if channel.group.lower() in channel.label.lower():
        return channel.label
    return f"{channel.label} · {channel.group}"


def find_channel(groups: dict[str, list[Channel]], label: str) -> Channel:
    """The channel called ``label`` (its label or its `option`; KeyError naming it when none is)."""
    for chans in groups.values():
        for c in chans:
            if label in (c.label, option(c)):
                return c
    raise KeyError(f"no field called {label!r}")


class FieldCache:
    """Members of one env, read on first use and kept until the env changes."""

    def __init__(self, rollout: ReadableRollout):
        self._rollout = rollout
        self._env: int | None = None
        self._members: dict[str, np.ndarray] = {}

    def series(self, env: int, channel: Channel) -> np.ndarray:
        """``[T]`` float64 values of ``channel`` for env ``env``."""
        if env != self._env:
            self._env, self._members = env, {}
        member = self._members.get(channel.key)
        if member is None or len(member) < self._rollout.T:  # a recording in progress grew since it was read
            data = self._rollout.env(env, [channel.key])[channel.key]
            member = self._members[channel.key] = data.reshape(len(data), -1)
        return member[:, channel.index].astype(np.float64)

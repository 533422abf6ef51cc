"""Small JSON exchanges between the ranks of ``torch.distributed``, on a gloo group of their own.

Why a gloo side group: what the recorder exchanges is a few kB of JSON on the host. On a default
group that runs NCCL, `torch.distributed.all_gather_object` needs each rank's current CUDA device
to be set and moves the bytes through the GPU; a group made with ``new_group(backend="gloo")``
keeps them on the CPU whatever the default backend, and keeps these exchanges off the training's
communicator. It is created once per process (a collective: every rank calls it, at the first
sharded `Recorder`), then reused.

Why polling: when a rank has died, a collective either fails (gloo: "Connection closed by
peer") or waits until its timeout. Each exchange is started asynchronously and polled with short
sleeps until it completes, its deadline passes or ``should_stop()`` turns true (SIGTERM while
closing), so the wait is bounded and the main thread keeps running Python signal handlers. A
group given up on is aborted (an operation left in flight makes the process abort at exit) and
not reused.

Why a rank that gave up makes no new group alone: ``new_group`` is a collective, and torch
names each group by a counter every rank must advance alike. The other ranks may still hold
their group (one of them finished the exchange this rank timed out of), so a lone
``new_group`` would wait for theirs and then pair with the next group they make (the user's
own). Until every rank starts ``torch.distributed`` anew (a new default group), a sharded
`Recorder` on that rank fails at once with `ExchangeError` instead.
"""

from __future__ import annotations

import datetime as _dt
import json
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist

_GROUP: Any = None
_WORLD: Any = None  # the default group _GROUP was made in
_GAVE_UP: tuple[Any, str] | None = None  # (default group, why) when this rank gave up on its side group


class ExchangeError(RuntimeError):
    """A collective between the ranks failed, timed out or was abandoned (the message says which)."""


def world() -> tuple[int, int] | None:
    """``(rank, world_size)`` when torch.distributed is initialised with more than one rank, else None."""
    if not (dist.is_available() and dist.is_initialized()):
        return None
    size = dist.get_world_size()
    return (dist.get_rank(), size) if size > 1 else None


def metadata_group(timeout_s: float) -> Any:
    """The gloo group the recorder's exchanges use (created on first use: a collective; again
    after the default group was destroyed and initialised anew)."""
    global _GROUP, _WORLD
    world_pg = dist.group.WORLD
    if _GAVE_UP is not None and _GAVE_UP[0] is world_pg:
        raise ExchangeError(
            f"this rank gave up on rollrec's gloo side group earlier ({_GAVE_UP[1]}); a new one needs every rank "
            "(torch.distributed.new_group is a collective): destroy_process_group() and init_process_group() "
            "again on every rank, or record with distributed=False"
        )
    if _GROUP is None or _WORLD is not world_pg:
        _GROUP = dist.new_group(backend="gloo", timeout=_dt.timedelta(seconds=timeout_s))
        _WORLD = world_pg
    return _GROUP


def _abandon(group: Any, why: str = "an exchange failed") -> None:
    """Give up on ``group``: abort its operation in flight (left pending, it would make the process
    abort when it exits) and stop reusing it; no other is made on this rank (see the module docstring)."""
    global _GROUP, _GAVE_UP
    if group is _GROUP:
        _GAVE_UP = (_WORLD, why)
    abort = getattr(group, "abort", None)
    try:
        if abort is not None:
            abort()
        dist.destroy_process_group(group)  # local: releases its threads now, not at interpreter exit
    except (RuntimeError, ValueError):
        pass
    if group is _GROUP:
        _GROUP = None


def _wait(work: Any, group: Any, what: str, deadline: float, timeout_s: float, should_stop: Callable[[], bool]) -> None:
    pause = 1e-4
    while not work.is_completed():
        if should_stop() or time.monotonic() >= deadline:
            _abandon(group, f"{what}: " + ("this rank was terminating" if should_stop() else f"timed out after {timeout_s:g} s"))
            if should_stop():
                raise ExchangeError(f"{what}: abandoned (this rank is terminating)")
            raise ExchangeError(f"{what}: timed out after {timeout_s:g} s (a rank did not take part: it died, hangs, "
                                "or never got there)")
        time.sleep(pause)
        pause = min(pause * 2, 0.002)  # a finished exchange is seen within 2 ms
    try:
        work.wait()
    except RuntimeError as exc:  # the backend's own report, e.g. gloo's "Connection closed by peer"
        _abandon(group, f"{what}: {str(exc).splitlines()[0]}")
        raise ExchangeError(f"{what}: {str(exc).splitlines()[0]}") from exc


def all_gather_json(obj: Any, group: Any, what: str, *, timeout_s: float,
                    should_stop: Callable[[], bool] = lambda: False) -> list[Any]:
    """Every rank's ``obj`` (JSON-serialisable), in rank order, on every rank.

    Two gloo all-gathers of CPU tensors (the lengths, then the padded bytes). Raises
    `ExchangeError` naming ``what`` if a rank fails, ``timeout_s`` passes, or ``should_stop()``.
    """
    deadline = time.monotonic() + timeout_s
    size = dist.get_world_size(group)
    data = json.dumps(obj).encode()
    lengths = [torch.zeros(1, dtype=torch.int64) for _ in range(size)]
    mine = torch.tensor([len(data)], dtype=torch.int64)
    _wait(dist.all_gather(lengths, mine, group=group, async_op=True), group, what, deadline, timeout_s, should_stop)
    longest = int(max(n.item() for n in lengths))
    buf = torch.zeros(longest, dtype=torch.uint8)
    buf[: len(data)] = torch.frombuffer(bytearray(data), dtype=torch.uint8)
    out = [torch.empty(longest, dtype=torch.uint8) for _ in range(size)]
    _wait(dist.all_gather(out, buf, group=group, async_op=True), group, what, deadline, timeout_s, should_stop)
    return [json.loads(bytes(o[: int(n.item())].numpy())) for o, n in zip(out, lengths)]


def barrier(group: Any, what: str, *, timeout_s: float, should_stop: Callable[[], bool] = lambda: False) -> None:
    """Wait until every rank of ``group`` gets here; raises `ExchangeError` like `all_gather_json`."""
    _wait(dist.barrier(group=group, async_op=True), group, what, time.monotonic() + timeout_s, timeout_s, should_stop)


__all__ = ["ExchangeError", "all_gather_json", "barrier", "metadata_group", "world"]

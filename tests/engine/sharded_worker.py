"""One rank of a sharded recording, run by ``torchrun`` from `test_sharded_torchrun` (not a test).

``torchrun --standalone --nproc-per-node 3 sharded_worker.py OUT SCENARIO`` in OUT; each rank
writes one JSON line per result (``{"rank", "case", ...}``) to ``results-<rank>.jsonl`` for the
test to check. Every value
recorded encodes the global env id ``g`` and the step ``t``: ``obs[t, g] = (g, t, 1000 g + t)``,
``rew = g + t / 100``, ``env_id = g``, ``done`` every 5 steps staggered by ``g``, reward terms
``{"g": g, "t": t}``.

Scenarios: ``ok`` (uneven shards in rank order; ``env_offset`` in reverse rank order; an
overlapping ``env_offset``, refused on every rank; ``dtypes=``/``fields=`` on every rank;
``every=2``, refused on every rank; `RolloutRecorder` on the built-in env;
``distributed=False`` on rank 0 alone), ``kill`` (rank 2 is SIGKILLed mid-recording: torchrun then
SIGTERMs the others), ``exit`` (rank 2 exits without closing while the others wait in close()),
``hang`` (rank 2 stays alive but never closes; the others time out), ``live`` (any number of ranks
record until the file ``stop`` appears, ``ready-<rank>`` once 12 steps are committed; rows
written with direct I/O when ``ROLLREC_TEST_DIRECT=1``, else buffered).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import warnings

import torch
import torch.distributed as dist

import rollrec

COUNTS = (5, 2, 4)  # envs per rank: uneven on purpose
T = 13  # not a multiple of the segment length (4)


def say(**entries) -> None:
    with open(f"results-{dist.get_rank()}.jsonl", "a") as f:  # one file per rank: no interleaved lines
        f.write(json.dumps({"rank": dist.get_rank(), **entries}) + "\n")


def step(g: torch.Tensor, t: int) -> dict:
    n = len(g)
    return {
        "obs": torch.stack([g.float(), torch.full((n,), float(t)), 1000 * g.float() + t], 1),
        "act": (g.float() / 10)[:, None],
        "rew": g.float() + t / 100,
        "done": (g + t) % 5 == 4,
        "reward_terms": {"g": g.float(), "t": torch.full((n,), float(t))},
        "env_id": g,
    }


def recorder(path: str, **kwargs) -> rollrec.Recorder:
    return rollrec.Recorder(path, COUNTS[dist.get_rank()], segment_steps=4, dt=0.05, env_name="sharded-test", **kwargs)


def run_steps(rec: rollrec.Recorder, offset: int, steps: int = T, on_step=None) -> rollrec.Recorder:
    g = torch.arange(offset, offset + COUNTS[dist.get_rank()])
    for t in range(steps):
        rec.record(**step(g, t))
        if on_step is not None:
            on_step(t)
    return rec


def record(path: str, offset: int, **kwargs) -> rollrec.Recorder:
    return run_steps(recorder(path, **kwargs), offset)


def scenario_ok(out: str) -> None:
    rank = dist.get_rank()
    offset = sum(COUNTS[:rank])
    rec = record(f"{out}/run.npz", offset, max_steps=T)
    say(case="rank-order", result=os.path.relpath(rec.close()), shard=os.path.relpath(rec.path))

    reverse = sum(COUNTS[rank + 1 :])  # rank 2 holds envs 0..3, rank 1 4..5, rank 0 6..10
    rec = record(f"{out}/reversed", reverse, env_offset=reverse)
    say(case="reversed", result=os.path.relpath(rec.close()))

    try:
        rollrec.Recorder(f"{out}/overlap", COUNTS[rank], env_offset=(0, 3, 7)[rank])
    except ValueError as exc:
        say(case="overlap", error=str(exc))

    rec = record(f"{out}/volume", offset, dtypes={"obs": torch.float16}, fields=("obs", "rew_terms"))
    say(case="volume", result=os.path.relpath(rec.close()))
    try:
        recorder(f"{out}/every", every=2)
    except ValueError as exc:  # before any collective: every rank refuses alike
        say(case="every", error=str(exc))

    from rollrec.envs import GaitPolicy, WalkerEnv

    env = WalkerEnv(COUNTS[rank], seed=rank)
    path = rollrec.RolloutRecorder(env, max_steps=6, progress=False).run(GaitPolicy(), f"{out}/walker")
    say(case="rollout-recorder", result=os.path.relpath(path))

    if rank == 0:  # one rank alone, the others doing something else: a plain file
        rec = record(f"{out}/alone.npz", 0, distributed=False)
        say(case="alone", result=os.path.relpath(rec.close()))
    dist.barrier()


def scenario_kill(out: str) -> None:
    rank = dist.get_rank()

    def on_step(t: int) -> None:
        time.sleep(0.05)  # keep ranks 0 and 1 recording when torchrun's SIGTERM comes
        if rank == 2 and t == 9:  # 2 segments (8 steps) flushed, 2 steps in the ring
            time.sleep(0.3)  # let the writer commit them
            os.kill(os.getpid(), signal.SIGKILL)

    with recorder(f"{out}/run") as rec:  # SIGTERM inside the block: the shard is finished on the way out
        run_steps(rec, sum(COUNTS[:rank]), steps=400, on_step=on_step)
    say(case="kill", error="not terminated")  # not reached: SIGTERM ends ranks 0 and 1


def scenario_exit(out: str, timeout: float) -> None:
    rank = dist.get_rank()
    rec = record(f"{out}/run", sum(COUNTS[:rank]), dist_timeout=timeout)
    if rank == 2:
        time.sleep(0.5)  # the others are waiting in close() by now
        if timeout > 5:
            os._exit(0)  # dies without closing: gloo reports the closed peer to the others
        time.sleep(timeout + 0.5)  # alive but silent: the others time out
        os._exit(0)
    start = time.monotonic()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = rec.close()
    say(case="exit", result=os.path.relpath(result), seconds=time.monotonic() - start,
        warnings=[str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)])


def scenario_live(out: str) -> None:
    rank = dist.get_rank()
    direct = os.environ.get("ROLLREC_TEST_DIRECT") == "1"
    rec = recorder(f"{out}/run", direct_io=direct, flush_interval_s=0.05)
    g = torch.arange(sum(COUNTS[:rank]), sum(COUNTS[: rank + 1]))
    t = 0
    while True:
        if t % 25 == 0 and t > 0:  # every rank asks at the same steps, so they stop at the same one
            flag = torch.tensor([float(os.path.exists("stop"))])
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            if flag.item():
                break
        rec.record(**step(g, t))
        t += 1
        if t == 12:
            time.sleep(0.3)  # committed by now
            open(f"ready-{rank}", "w").close()
        time.sleep(0.01)
    say(case="live", result=os.path.relpath(rec.close()), steps=t)


def main() -> None:
    out, scenario = sys.argv[1], sys.argv[2]
    dist.init_process_group("gloo")
    if scenario == "ok":
        scenario_ok(out)
    elif scenario == "kill":
        scenario_kill(out)
    elif scenario == "exit":
        scenario_exit(out, timeout=60.0)
    elif scenario == "hang":
        scenario_exit(out, timeout=1.0)
    elif scenario == "live":
        scenario_live(out)
    else:
        raise SystemExit(f"unknown scenario {scenario!r}")


if __name__ == "__main__":
    main()

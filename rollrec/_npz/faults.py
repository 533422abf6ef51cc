"""Named fault-injection points in the writer, for crash tests; free when unused.

Every step of writing a file in place that changes it (a commit, each step of growing the
layout, of finalising it, of the final rename) calls ``point(name)`` right after the step. A
test installs `hook` (any callable taking the point's name) to kill the process there, or sets
the environment variable ``ROLLREC_FAULT`` before rollrec is imported:

- ``ROLLREC_FAULT=finalize.header:3``: SIGKILL at the third time point ``finalize.header`` runs;
- ``ROLLREC_FAULT=*:17``: SIGKILL at the 17th point reached, whatever its name.

With no hook installed, a point costs one global lookup and a comparison.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable

#: Called with each point's name as it is reached; None (the default) does nothing.
hook: Callable[[str], None] | None = None


def point(name: str) -> None:
    """Mark that the step ``name`` is complete (see the module docstring)."""
    if hook is not None:
        hook(name)


def kill_at(name: str, hit: int = 1) -> Callable[[str], None]:
    """A hook that SIGKILLs this process at the ``hit``-th time point ``name`` (``"*"``: any) runs."""
    seen = 0

    def _hook(reached: str) -> None:
        nonlocal seen
        if name in ("*", reached):
            seen += 1
            if seen == hit:
                os.kill(os.getpid(), signal.SIGKILL)

    return _hook


def _from_environment() -> None:
    global hook
    spec = os.environ.get("ROLLREC_FAULT")
    if spec:
        name, _, hit = spec.partition(":")
        hook = kill_at(name, int(hit or 1))


_from_environment()

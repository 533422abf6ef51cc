"""Open a rollout the way every reader of it does, and say how it went (used by the fuzz test and
to replay the corpus in a child process, where a crash cannot take the test run down with it).

``python replay.py FILE...`` prints one JSON line per file: ``{"file", "outcome", "message"}``
with outcome ``ok`` or ``refused`` (a `RolloutFormatError`); any other exception propagates.
"""

from __future__ import annotations

import json
import sys

import numpy as np


def touch(path: str) -> tuple[str, str]:
    """``load`` + every member read + first and last env + episode helpers + ``info --verify``
    (JSON and text). Returns ``("ok", "")`` or ``("refused", message)``; other exceptions propagate."""
    import rollrec
    from rollrec.cli.info import format_summary, summarize

    try:
        with rollrec.load(path) as r:
            for key in r:
                np.asarray(r[key]).tobytes()
            _ = (r.dt, r.env_name, r.reward_term_names, r.link_names, repr(r))
            if r.N:
                for env in (0, r.N - 1):
                    r.env(env)
                    r.episode_returns(env)
                r.total_rewards()
            r.check_unchanged()
        summary = summarize(path, verify=True)
        json.dumps(summary)
        format_summary(summary).encode("utf-8")
    except rollrec.RolloutFormatError as exc:
        message = str(exc)
        if "\n" in message or not message.startswith(str(path)):
            raise AssertionError(f"error message is not one line naming the file: {message!r}") from exc
        return "refused", message
    return "ok", ""


def main(argv: list[str]) -> int:
    for path in argv:
        outcome, message = touch(path)
        print(json.dumps({"file": path, "outcome": outcome, "message": message}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Serve the live replay of a recording from the process that records it (`Recorder(serve=...)`).

The replay runs in a child process, ``python -m rollrec replay PATH --follow-parent``, which
follows the recording through its files like any other viewer (`rollrec.io.live`): it shares
nothing with the recording loop but the files, so serving costs the loop no lock and no
interpreter time, only a process the OS schedules on another core. The child prints its URL
(echoed here) and exits when this process does (it watches its standard input for EOF) or on
`LiveServer.close`; until then it keeps serving, the finished file too.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Serve:
    """Where the live replay listens: ``host`` (loopback unless asked: anything else prints a
    warning, as ``rollrec replay`` does) and ``port``; ``env`` shown first; ``control``: the policy
    control file (`rollrec.loop.control`) of a session served by `RolloutRecorder.run`."""

    host: str = "127.0.0.1"
    port: int = 8080
    env: int = 0
    control: str | None = None

    @classmethod
    def of(cls, value: Any) -> Serve | None:
        """``serve=`` as given: None/False (no replay), True (127.0.0.1:8080), a port, ``"host:port"``,
        or a `Serve`. Raises TypeError / ValueError for anything else."""
        if value is None or value is False:
            return None
        if value is True:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, int):
            if not 0 <= value < 65536:
                raise ValueError(f"serve={value}: a port is 0..65535")
            return cls(port=value)
        if isinstance(value, str):
            host, sep, port = value.rpartition(":")
            if not sep or not port.isdigit():
                raise ValueError(f"serve={value!r}: give a port, or 'host:port'")
            return cls(host=host.strip("[]") or "127.0.0.1", port=int(port))
        raise TypeError(f"serve= takes True, a port, 'host:port' or a rollrec Serve, got {type(value).__name__}")


class LiveServer:
    """``rollrec replay`` of ``path`` in a child process (see the module docstring)."""

    def __init__(self, path: str | os.PathLike, serve: Serve, *, echo: bool = True):
        self.path = os.fspath(path)
        self.serve = serve
        cmd = [sys.executable, "-m", "rollrec", "replay", self.path, "--host", serve.host, "--port", str(serve.port),
               "--env", str(serve.env), "--follow-parent"]
        if serve.control is not None:
            cmd += ["--control", serve.control]
        self.process = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        text=True, bufsize=1)
        self.url: str | None = None
        self.lines: list[str] = []  # what the child printed
        self._ready = threading.Event()
        self._echo = echo
        threading.Thread(target=self._read, name="rollrec-serve", daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            if self._echo:
                print(line, end="", file=sys.stderr, flush=True)
            if self.url is None and " at http://" in line:
                self.url = line.split(" at ", 1)[1].split()[0]
                self._ready.set()
        self._ready.set()  # the child ended

    def wait_url(self, timeout: float | None = None) -> str | None:
        """The replay's URL once it serves (None if the child ended first or ``timeout`` passed)."""
        self._ready.wait(timeout)
        return self.url

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def close(self, timeout: float = 10.0) -> None:
        """Stop the replay (close its standard input; terminate it if it does not end)."""
        if self.process.stdin is not None and not self.process.stdin.closed:
            try:
                self.process.stdin.close()
            except OSError:
                pass
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.terminate()
            self.process.wait(5.0)


__all__ = ["LiveServer", "Serve"]

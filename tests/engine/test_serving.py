"""``serve=`` as `Recorder` and `RolloutRecorder.run` take it (`rollrec.engine.serving.Serve.of`)."""

from __future__ import annotations

import pytest

from rollrec.engine.serving import Serve


def test_what_serve_takes():
    assert Serve.of(None) is None and Serve.of(False) is None
    assert Serve.of(True) == Serve("127.0.0.1", 8080)  # loopback unless asked
    assert Serve.of(8090) == Serve("127.0.0.1", 8090)
    assert Serve.of(0).port == 0  # a free port
    assert Serve.of("0.0.0.0:9000") == Serve("0.0.0.0", 9000)
    assert Serve.of(":9000") == Serve("127.0.0.1", 9000)
    assert Serve.of("[::1]:9000") == Serve("::1", 9000)
    s = Serve("127.0.0.1", 1, env=3)
    assert Serve.of(s) is s


@pytest.mark.parametrize("bad, error, match", [
    (70000, ValueError, "0..65535"), (-1, ValueError, "0..65535"), ("localhost", ValueError, "host:port"),
    ("h:x", ValueError, "host:port"), (1.5, TypeError, "takes True, a port"),
])
def test_bad_serve_is_one_line(bad, error, match):
    with pytest.raises(error, match=match):
        Serve.of(bad)

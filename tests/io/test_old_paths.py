"""Import paths users may hold from before the package was split keep working."""

from __future__ import annotations

import rollrec


def test_the_io_package_still_names_what_it_always_did():
    import rollrec.io as io

    assert io.load is rollrec.load and io.Rollout is rollrec.Rollout
    assert io.save_rollout is rollrec.save_rollout and io.recover is rollrec.recover
    assert io.RolloutFormatError is rollrec.RolloutFormatError and io.LegacyPickleError is rollrec.LegacyPickleError
    assert io.FORMAT_VERSION == rollrec.FORMAT_VERSION == 3 and io.QUAT_ORDER == "wxyz"
    assert sorted(dir(io)) == sorted(io.__all__)


def test_the_engine_package_still_names_the_recorder():
    from rollrec.engine import Recorder

    assert Recorder is rollrec.Recorder

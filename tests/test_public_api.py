"""Every public name resolves from the top-level package."""

import subprocess
import sys

import rollrec


def test_every_export_resolves():
    for name in rollrec.__all__:
        assert getattr(rollrec, name) is not None, name


def test_reading_does_not_import_torch():
    code = "import sys, rollrec; rollrec.load; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)

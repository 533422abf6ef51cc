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


def test_type_checking_imports_mirror_the_lazy_table():
    # IDEs and type checkers see the TYPE_CHECKING imports; users get _EXPORTS. They must agree.
    import ast
    from pathlib import Path

    tree = ast.parse(Path(rollrec.__file__).read_text())
    block = next(n for n in tree.body if isinstance(n, ast.If) and getattr(n.test, "id", "") == "TYPE_CHECKING")
    imported = {(a.name, node.module) for node in block.body for a in node.names}
    assert imported == set(rollrec._EXPORTS.items())

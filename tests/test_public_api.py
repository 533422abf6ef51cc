"""The public API: every name resolves, old names warn and name their new place, the README lists
exactly ``__all__``, and type checkers see the same table."""

import ast
import importlib
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import rollrec

ROOT = Path(__file__).resolve().parents[1]


def test_every_export_resolves():
    for name in rollrec.__all__:
        assert getattr(rollrec, name) is not None, name


def test_the_api_is_small_and_speaks_the_cli_verbs():
    assert len(rollrec.__all__) <= 20
    # rollrec replay / rollrec video; load and save are symmetric
    assert {"load", "save", "recover", "replay", "render_video"} <= set(rollrec.__all__)
    assert rollrec.replay is importlib.import_module("rollrec.viewer").serve
    assert rollrec.render_video is importlib.import_module("rollrec.video").render_rollout
    assert rollrec.save is importlib.import_module("rollrec.io").save_rollout


def test_reading_does_not_import_torch():
    code = "import sys, rollrec; rollrec.load; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_type_checking_imports_mirror_the_lazy_table():
    # IDEs and type checkers see the TYPE_CHECKING imports; users get _EXPORTS. They must agree.
    tree = ast.parse(Path(rollrec.__file__).read_text())
    block = next(n for n in tree.body if isinstance(n, ast.If) and getattr(n.test, "id", "") == "TYPE_CHECKING")
    imported = {(a.asname or a.name, node.module if a.asname is None else f"{node.module}:{a.name}")
                for node in block.body for a in node.names}
    assert imported == set(rollrec._EXPORTS.items())


@pytest.mark.parametrize("old", sorted(rollrec._DEPRECATED))
def test_old_names_warn_and_name_their_new_place(old):
    _, new = rollrec._DEPRECATED[old]
    with pytest.warns(DeprecationWarning, match=rf"rollrec\.{old} is deprecated; use {re.escape(new)}$"):
        value = getattr(rollrec, old)
    package, _, attr = new.rpartition(".")
    assert getattr(importlib.import_module(package), attr) is value  # the new place holds the same object
    if package != "rollrec":
        assert attr in importlib.import_module(package).__all__
    assert old not in rollrec.__all__ and old not in dir(rollrec)


def test_old_names_warn_on_every_access_and_stay_out_of_the_namespace():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first, second = rollrec.serve, rollrec.serve
    assert first is second and len(caught) == 2
    assert "serve" not in vars(rollrec)


def test_unknown_names_raise_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        rollrec.nope  # noqa: B018


def test_readme_lists_exactly_all():
    text = (ROOT / "README.md").read_text()
    section = text.split("### Python API", 1)[1].split("\n#", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| for ")]
    listed = [name for row in rows for name in re.findall(r"`([^`]+)`", row.rsplit("|", 2)[1])]
    assert sorted(listed) == sorted(rollrec.__all__)


def test_package_is_typed():
    assert (Path(rollrec.__file__).parent / "py.typed").is_file()
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'\[tool\.setuptools\.package-data\]\s*\nrollrec = \[[^\]]*"py\.typed"', pyproject)

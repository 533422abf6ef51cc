"""Sphinx directives that generate rollrec's reference pages from the code, so they cannot drift.

- ``rollrec-api``: one autodoc entry per name of ``rollrec.__all__``, in that order; a name added
  to ``rollrec/__init__.py`` appears on the next build.
- ``rollrec-format``: the modules of ``rollrec.format`` (the file format's specification, in their
  docstrings and ``#:`` constants), in the order the package docstring lists them, then any other.
- ``rollrec-cli``: the ``rollrec`` command's help and each subcommand's, from its argparse parser.
- ``rollrec-examples``: a table of ``examples/*.py``, each with the first paragraphs of its docstring.
"""

from __future__ import annotations

import importlib
import logging
import inspect
import pkgutil

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles


def _api_lines() -> list[str]:
    import rollrec

    lines: list[str] = []
    for name in rollrec.__all__:
        obj = getattr(rollrec, name)
        title = name.replace("_", r"\_") if name.startswith("_") else name  # __x__ would be a link
        lines += [title, "-" * len(title), ""]
        if inspect.isclass(obj):
            directive = "autoexception" if issubclass(obj, BaseException) else "autoclass"
            lines += [f".. {directive}:: rollrec.{name}", "   :members:", ""]
        elif callable(obj):
            lines += [f".. autofunction:: rollrec.{name}", ""]
        else:
            lines += [f".. py:data:: rollrec.{name}", f"   :value: {obj!r}", "",
                      "   The installed rollrec's version.", ""]
        defined = getattr(obj, "__module__", None)
        if defined and defined != "rollrec":
            lines += [f"   Defined in ``{defined}``.", ""]
    return lines


def _format_modules() -> list[str]:
    import rollrec.format as fmt

    found = sorted(m.name for m in pkgutil.iter_modules(fmt.__path__) if not m.name.startswith("_"))
    doc = fmt.__doc__ or ""
    listed = sorted(found, key=lambda m: (doc.find(f"rollrec.format.{m}`") % (len(doc) + 1), m))
    return [f"rollrec.format.{m}" for m in listed]


def _format_lines() -> list[str]:
    lines = [".. automodule:: rollrec.format", "   :no-members:", ""]
    for module in _format_modules():
        importlib.import_module(module)
        title = f"``{module}``"
        lines += [title, "-" * len(title), "", f".. automodule:: {module}", "   :members:", "   :undoc-members:", ""]
    return lines


def _cli_lines() -> list[str]:
    import os

    from rollrec.cli.main import build_parser

    os.environ["COLUMNS"] = "100"  # argparse wraps help to the terminal: fix it for a stable page
    parser = build_parser()
    lines = ["``rollrec``", "-" * 11, "", ".. code-block:: text", ""]
    lines += ["   " + line for line in parser.format_help().splitlines()] + [""]
    actions = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    for action in actions:
        for name, sub in action.choices.items():
            title = f"``rollrec {name}``"
            lines += [title, "-" * len(title), "", ".. code-block:: text", ""]
            lines += ["   " + line for line in sub.format_help().splitlines()] + [""]
    return lines


def _examples_lines() -> list[str]:
    import ast
    from pathlib import Path

    folder = Path(__file__).resolve().parents[2] / "examples"
    lines = [".. list-table::", "   :header-rows: 1", "   :widths: 30 70", "", "   * - file", "     - what it does"]
    for script in sorted(folder.glob("[0-9]*.py")):
        doc = ast.get_docstring(ast.parse(script.read_text())) or ""
        paragraphs = [" ".join(p.split()) for p in doc.split("\n\n") if p.strip()]
        lines += [f"   * - ``{script.name}``", f"     - {' '.join(paragraphs[:2])}"]
    return lines + [""]


class _Generated(SphinxDirective):
    has_content = False

    def lines(self) -> list[str]:
        raise NotImplementedError

    def run(self) -> list[nodes.Node]:
        node = nodes.container()
        content = StringList(self.lines(), source="<rollrec-docs generated>")
        nested_parse_with_titles(self.state, content, node)
        return node.children


class ApiDirective(_Generated):
    def lines(self) -> list[str]:
        return _api_lines()


class FormatDirective(_Generated):
    def lines(self) -> list[str]:
        return _format_lines()


class CliDirective(_Generated):
    def lines(self) -> list[str]:
        return _cli_lines()


class _ListedGuidesGlob(logging.Filter):
    """The index's guides toctree lists the guides in reading order, then ``guides/*`` catches any
    guide page not listed yet (a branch's new page). When every guide is listed that glob matches
    nothing new, which is expected: drop that one warning (its type cannot be suppressed)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.getMessage().startswith("toctree glob pattern 'guides/*' didn't match"))


class ExamplesDirective(_Generated):
    def lines(self) -> list[str]:
        return _examples_lines()


def setup(app):
    logging.getLogger("sphinx.sphinx.directives.other").addFilter(_ListedGuidesGlob())
    app.add_directive("rollrec-api", ApiDirective)
    app.add_directive("rollrec-format", FormatDirective)
    app.add_directive("rollrec-cli", CliDirective)
    app.add_directive("rollrec-examples", ExamplesDirective)
    return {"version": "1", "parallel_read_safe": True}

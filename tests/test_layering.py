"""The package's layers: no import cycle inside rollrec, and no module importing a layer above its own.

Every import of every module is read with ``ast`` (module level and inside functions; imports
under ``if TYPE_CHECKING:`` never run and are left out). ``from package import name`` depends on
the package itself (its ``__init__`` runs and is asked for ``name``), ``import a.b`` and
``from a.b import c`` on the modules named. The package root (``rollrec/__init__.py``) imports
everything lazily and is left out; no module may import it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "rollrec"

#: Low to high. A module may import its own group, the lower layers, and the same-layer groups
#: listed in `SAME_LAYER`. A module belongs to the longest group that prefixes its name.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("rollrec._version", "rollrec._lazy"),
    ("rollrec.format", "rollrec.geometry"),
    ("rollrec._npz", "rollrec.model", "rollrec.envs", "rollrec.media"),
    ("rollrec.io",),
    # statistics over rollouts read through rollrec.io (rollrec compare)
    ("rollrec.stats",),
    ("rollrec.engine",),
    # the rollout loop sits above the adapters it drives
    ("rollrec.adapters", "rollrec.loop"),
    # exports draw with the viewer (the viser scene) and sit beside it
    ("rollrec.viewer", "rollrec.video", "rollrec.exports"),
    # the command line and the benchmarks
    ("rollrec.cli", "rollrec.bench"),
    # entry points (``python -m rollrec``, ``python -m rollrec.viewer``) run the command line
    ("rollrec.__main__", "rollrec.viewer.__main__"),
)
#: (importer group, imported group) pairs of the same layer that are allowed.
SAME_LAYER = {
    ("rollrec.media", "rollrec._npz"),  # a video file is created exclusively, never through a symlink
    ("rollrec.loop", "rollrec.adapters"),
    ("rollrec.cli", "rollrec.bench"),  # `rollrec bench` runs the benchmarks
    ("rollrec.exports", "rollrec.viewer"),  # the viser export draws the replay's robot
}
#: Cycles known when this test was written, in rooms other branches rebuild; each is removed
#: here once it is gone (a listed cycle that no longer exists fails the test too).
KNOWN_CYCLES: set[frozenset[str]] = set()


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


MODULES = _modules()


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node, except the bodies of ``if TYPE_CHECKING:`` blocks."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                stack.extend(child.orelse)
                continue
            stack.append(child)


def _imports(name: str, path: Path) -> set[str]:
    """The rollrec modules and packages ``name`` depends on when it (or a function of it) runs."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in _runtime_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            out.add(base)  # a module's names, or a package's (its __init__ runs and is asked for them)
            out.update(f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in MODULES)
    return {m for m in out if m == "rollrec" or m.startswith("rollrec.")} - {name}


GRAPH = {name: _imports(name, path) for name, path in MODULES.items() if name != "rollrec"}


def _group(module: str) -> tuple[int, str]:
    best = max((g for layer in LAYERS for g in layer if module == g or module.startswith(g + ".")), key=len, default=None)
    assert best is not None, f"{module} is in no layer of tests/test_layering.py: place its package there"
    return next(i for i, layer in enumerate(LAYERS) if best in layer), best


def test_every_module_has_a_layer():
    for name in GRAPH:
        _group(name)


def test_no_module_imports_against_the_layering():
    bad = []
    for name, deps in sorted(GRAPH.items()):
        layer, group = _group(name)
        for dep in sorted(deps):
            if dep == "rollrec":
                bad.append(f"{name} imports the package root (import from the module that defines the name)")
                continue
            dep_layer, dep_group = _group(dep)
            if dep_group == group or dep_layer < layer or (group, dep_group) in SAME_LAYER:
                continue
            bad.append(f"{name} (layer {layer}: {group}) imports {dep} (layer {dep_layer}: {dep_group})")
    assert not bad, "imports against the layering:\n  " + "\n  ".join(bad)


def _cycles() -> list[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out = []
    counter = 0
    for root in sorted(GRAPH):
        if root in index:
            continue
        work = [(root, iter(sorted(GRAPH[root] & GRAPH.keys())))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(GRAPH[child] & GRAPH.keys()))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    out.append(frozenset(component))
    return out


def test_no_import_cycles_inside_rollrec():
    cycles = set(_cycles())
    new = [sorted(c) for c in cycles - KNOWN_CYCLES]
    assert not new, f"import cycles: {new}"
    gone = [sorted(c) for c in KNOWN_CYCLES - cycles]
    assert not gone, f"these cycles are gone: remove them from KNOWN_CYCLES in tests/test_layering.py: {gone}"


def test_the_walk_sees_function_level_imports_and_packages():
    """The graph is only as good as its reading of imports: check it on imports known to exist."""
    assert "rollrec.io.opening" in GRAPH["rollrec.io.summary"]  # module level
    assert "rollrec.media.background" in GRAPH["rollrec.engine.frames"]  # inside a function
    assert "rollrec._npz" in GRAPH["rollrec._npz.stream"]  # from rollrec._npz import faults: the package too
    assert "rollrec.io.opening" not in GRAPH["rollrec.io"]  # TYPE_CHECKING imports never run

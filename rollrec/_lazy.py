"""Lazy re-exports: a package names where each public name lives and imports it on first use."""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable, Mapping
from typing import Any


def resolve(target: str, name: str) -> Any:
    """The object ``target`` names: ``"pkg.module:attr"``, or ``"pkg.module"`` for its attribute ``name``."""
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr or name)


def lazy_exports(
    package: str,
    exports: Mapping[str, str],
    names: list[str],
    namespace: dict[str, Any],
    deprecated: Mapping[str, tuple[str, str]] | None = None,
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The package's ``(__getattr__, __dir__)``.

    ``exports`` maps a public name to where it is defined (``"pkg.module"``, whose attribute of
    the same name it is, or ``"pkg.module:attr"``); the first access imports it and caches the
    value in ``namespace`` (the package's ``globals()``). ``names`` is what ``dir()`` lists.
    ``deprecated`` maps an old name to ``(where it is defined, its new public name)``: each
    access warns with a `DeprecationWarning` naming the new one, and returns the same object;
    old names are neither cached nor listed.
    """
    old_names = deprecated or {}

    def __getattr__(name: str) -> Any:
        target = exports.get(name)
        if target is not None:
            value = resolve(target, name)
            namespace[name] = value
            return value
        if name in old_names:
            target, new = old_names[name]
            warnings.warn(f"{package}.{name} is deprecated; use {new}", DeprecationWarning, stacklevel=2)
            return resolve(target, name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return names

    return __getattr__, __dir__

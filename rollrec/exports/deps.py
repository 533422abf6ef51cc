"""The optional packages the exporters need, imported only when an export runs.

Each target names its extra (``pip install 'rollrec[lerobot]'``); a missing package raises
`MissingExtraError` (an ImportError) whose one line says what to install.
"""

from __future__ import annotations

import importlib
from types import ModuleType

#: target -> (extra, {module: the package that provides it})
EXTRAS: dict[str, tuple[str, dict[str, str]]] = {
    "lerobot": ("lerobot", {"pyarrow": "pyarrow", "av": "av"}),
    "robomimic": ("hdf5", {"h5py": "h5py"}),
    "rerun": ("rerun", {"rerun": "rerun-sdk"}),
    "viser": ("", {"viser": "viser"}),  # a dependency of rollrec itself
}


class MissingExtraError(ImportError):
    """An optional package an exporter needs is not installed; the message says how to install it."""


def require(module: str, target: str) -> ModuleType:
    """Import ``module`` for export target ``target``, or raise `MissingExtraError` with the install line."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        extra, packages = EXTRAS[target]
        package = packages.get(module.split(".")[0], module)
        hint = f"pip install 'rollrec[{extra}]'" if extra else f"pip install {package}"
        raise MissingExtraError(f"rollrec export --to {target} needs {package} ({exc.msg}): {hint}") from None


__all__ = ["EXTRAS", "MissingExtraError", "require"]

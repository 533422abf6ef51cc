"""The optional packages the camera streams need, imported when first used, with the line that installs them."""

from __future__ import annotations

from types import ModuleType

#: What to run when PyAV or zstandard is missing.
INSTALL_HINT = "pip install 'rollrec[camera]'"


def require_av() -> ModuleType:
    """PyAV (``av``), or ImportError saying how to install it."""
    try:
        import av
    except ImportError:
        raise ImportError(f"camera images need PyAV (the 'av' package) to encode and decode H.264: {INSTALL_HINT}") from None
    return av


def require_zstd() -> ModuleType:
    """``zstandard``, or ImportError saying how to install it."""
    try:
        import zstandard
    except ImportError:
        raise ImportError(f"camera images need the 'zstandard' package for lossless streams: {INSTALL_HINT}") from None
    return zstandard


__all__ = ["INSTALL_HINT", "require_av", "require_zstd"]

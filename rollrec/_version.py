"""The installed rollrec's version, importable without the package root (which re-exports it)."""

__version__ = "0.1.0"

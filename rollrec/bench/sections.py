"""The names of ``rollrec bench``'s sections, in the order they run (numpy- and torch-free, so the
command line can offer them without importing what measures them)."""

from __future__ import annotations

SECTIONS = ("record", "e2e", "stall", "rss", "reader", "cuda", "dist", "volume", "sustained", "camera")

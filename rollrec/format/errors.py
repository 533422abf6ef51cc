"""Errors raised when a rollout file cannot be read or written."""

from __future__ import annotations


class RolloutFormatError(ValueError):
    """A file is not a valid rollrec rollout; the message names the file and the problem."""


class LegacyPickleError(RolloutFormatError):
    """A file from the original recorder needs pickle to open and the caller did not opt in."""

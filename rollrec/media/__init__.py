"""rollrec.media (see the package docstring written in the next commits)."""

"""rollrec.format (see the package docstring written in the next commits)."""

"""rollrec._npz (see the package docstring written in the next commits)."""

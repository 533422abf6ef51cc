"""Subcommands of the ``rollrec`` CLI that belong to no subpackage."""

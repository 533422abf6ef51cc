"""The ``rollrec`` command: one module per subcommand, each with ``register(subparsers)``.

`main` (``rollrec`` on the command line, ``python -m rollrec``) builds the parser from
`rollrec.cli.main._COMMAND_MODULES`: ``demo``, ``info`` (with ``info_volume``), ``recover``,
``replay``, ``video``, ``bench``. A subcommand parses its arguments and calls the library; what
it computes lives below it.

May import: every other package of rollrec (this is the top layer); nothing imports it but
``__main__`` modules.
"""

from rollrec.cli.main import build_parser, main

__all__ = ["build_parser", "main"]

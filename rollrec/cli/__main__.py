"""``python -m rollrec.cli ...``: the ``rollrec`` command."""

import sys

from rollrec.cli.main import main

sys.exit(main())

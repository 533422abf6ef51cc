"""``python -m rollrec ...``: the ``rollrec`` command (`rollrec.cli`)."""

import sys

from rollrec.cli.main import main

sys.exit(main())

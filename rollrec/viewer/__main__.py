"""``python -m rollrec.viewer --npz FILE``: the original tool's command line (an entry point, as `rollrec.cli`)."""

import sys

from rollrec.cli.replay import main

sys.exit(main())

"""``python -m rollrec.viewer --npz FILE``: the original tool's command line."""

import sys

from rollrec.viewer.cli import main

sys.exit(main())

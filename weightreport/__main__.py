"""``python -m weightreport``: the same command line as ``weightreport``."""

import sys

from weightreport.cli import main

sys.exit(main())

"""`python -m kerasrwm ...`: the `kerasrwm` command line."""

import sys

from kerasrwm.cli import main

sys.exit(main())

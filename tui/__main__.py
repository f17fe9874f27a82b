"""``python -m tui``: the terminal UI of the workspace in $ENDPOINTS_HOME (or ./mlruns)."""

import sys

from .app import main

sys.exit(main())

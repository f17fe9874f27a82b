"""``python -m toolkit``: the ``endpoints`` command."""

import sys

from .cli import main

sys.exit(main())

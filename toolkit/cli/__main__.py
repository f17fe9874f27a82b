"""``python -m toolkit.cli`` (as ``endpoints``)."""

import sys

from .run import main

sys.exit(main())

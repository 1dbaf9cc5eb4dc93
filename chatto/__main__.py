"""``python -m chatto`` is the ``chatto`` command."""

import sys

from chatto.cli import main

sys.exit(main())

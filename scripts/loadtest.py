"""Load test: V virtual users, R rooms, a fixed posting rate; see chatto/loadtest/.

Run: ``.venv/bin/python scripts/loadtest.py --help`` (same as ``chatto loadtest``).
``--smoke`` is the few-second CI run that must pass with zero loss.
"""

import sys

from chatto.loadtest.driver import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

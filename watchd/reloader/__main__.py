"""``python -m watchd.reloader``: see :mod:`watchd.reloader.cli`."""

import sys

from watchd.reloader.cli import main

if __name__ == "__main__":
    sys.exit(main())

"""hupper's recommended use: start_reloader in the program, watch_files for the extra files.

python peer_hupper.py RECORD TREE
"""

from __future__ import annotations

import os
import signal
import sys

import hupper  # type: ignore[import-not-found,unused-ignore]
from child import serve  # type: ignore[import-not-found,unused-ignore]


def main() -> None:
    record, tree = sys.argv[1], sys.argv[2]
    reloader = hupper.start_reloader("peer_hupper.main")  # the parent stays in here
    reloader.watch_files(
        [os.path.join(folder, name) for folder, _, names in os.walk(tree) for name in names]
    )
    serve(record, (signal.SIGTERM, signal.SIGINT))


if __name__ == "__main__":
    main()

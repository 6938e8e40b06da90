"""hupper's recommended use: start_reloader in the program, watch_files for the extra files.

python peer_hupper.py RECORD TREE
"""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType

import hupper  # type: ignore[import-not-found,unused-ignore]
from child import stamp  # type: ignore[import-not-found,unused-ignore]


def main() -> None:
    record, tree = sys.argv[1], sys.argv[2]
    reloader = hupper.start_reloader("peer_hupper.main")  # the parent stays in here
    reloader.watch_files(
        [os.path.join(folder, name) for folder, _, names in os.walk(tree) for name in names]
    )

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stamp(record, "signal")
        stamp(record, "exit")
        os._exit(0)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    stamp(record, "start")
    while True:
        signal.pause()


if __name__ == "__main__":
    main()

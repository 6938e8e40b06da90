"""A child program for tests: records what happens to it, one line per event.

    python -m tests.helpers.child RECORD [--exit N] [--after SECONDS] [--ignore-term]
        [--grandchild] [--print TEXT]

Lines appended to RECORD: ``start <pid> <pgid> <ns>``, ``signal <pid> <NAME> <ns>``,
``exit <pid> <code> <ns>``, ``grandchild <pid> <ns>``. Time stamps are CLOCK_MONOTONIC.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from types import FrameType


def record(path: str, *words: object) -> None:
    line = " ".join(str(word) for word in (*words, time.monotonic_ns())) + "\n"
    with open(path, "a") as out:
        out.write(line)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("record")
    parser.add_argument("--exit", type=int, default=None, help="exit with this code at once")
    parser.add_argument("--after", type=float, default=0.0, help="...after this many seconds")
    parser.add_argument("--ignore-term", action="store_true")
    parser.add_argument("--grandchild", action="store_true", help="leave a sleeping grandchild")
    parser.add_argument("--print", default=None, help="print this line on start")
    args = parser.parse_args()
    pid = os.getpid()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        record(args.record, "signal", pid, name)
        if signum == signal.SIGTERM and args.ignore_term:
            return
        if signum == signal.SIGHUP:
            return
        record(args.record, "exit", pid, -signum)
        os._exit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    if args.grandchild:
        grandchild = subprocess.Popen(
            [sys.executable, "-c", "import time; time.sleep(3600)"], close_fds=True
        )
        record(args.record, "grandchild", grandchild.pid)
    record(args.record, "start", pid, os.getpgid(0))
    if args.print is not None:
        print(args.print, flush=True)
    if args.exit is not None:
        time.sleep(args.after)
        code: int = args.exit
        record(args.record, "exit", pid, code)
        return code
    while True:
        signal.pause()


if __name__ == "__main__":
    sys.exit(main())

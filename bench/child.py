"""The supervised child every tool runs: it stamps its own start, signal and exit.

    python child.py RECORD

Appends ``start <pid> <ns>``, ``signal <pid> <ns>`` and ``exit <pid> <ns>`` lines to
RECORD (CLOCK_MONOTONIC, the same clock the benchmark reads), so latencies are measured
from the child's side, not by polling it.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from types import FrameType


def stamp(record: str, event: str) -> None:
    line = f"{event} {os.getpid()} {time.monotonic_ns()}\n".encode()
    fd = os.open(record, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def serve(record: str, stop_signals: tuple[signal.Signals, ...]) -> None:
    """Stamp the start, then wait; a stop signal is stamped and ends the process at once."""

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stamp(record, "signal")
        stamp(record, "exit")
        os._exit(0)

    for sig in stop_signals:
        signal.signal(sig, on_signal)
    stamp(record, "start")
    while True:
        signal.pause()


def main() -> None:
    serve(sys.argv[1], (signal.SIGTERM, signal.SIGINT, signal.SIGHUP))


if __name__ == "__main__":
    main()

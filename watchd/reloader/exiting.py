"""Ending a serving process for a reload: fast, from any thread, yet as a program expects."""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
from typing import NoReturn

RELOAD_STATUS = 3  # what Django's trigger_reload exits with, and its parent restarts on
EXIT_TIMEOUT = 5.0  # for the atexit functions and the flush, at most


def exit_now(status: int = RELOAD_STATUS) -> NoReturn:
    """Run the ``atexit`` functions, flush what the program wrote, then end the process.

    ``sys.exit`` would only end the calling thread, and the interpreter's teardown of every
    module takes 0.3 to 0.5 s with Django and a project loaded, which a reloading parent
    waits for; ``os._exit`` ends every thread at once. What a program can notice of an exit
    still happens: its atexit functions run (a log flushed, coverage data written) and
    standard output and error are flushed, as under Django's ``sys.exit(3)``. Threads still
    running are not waited for. This runs on a helper thread, so a main thread stuck writing
    to a full pipe, or an atexit function that hangs, cannot hold the reload up for long.
    """

    def finish() -> None:
        atexit._run_exitfuncs()
        for handler in logging.getLogger().handlers + logging.getLogger("watchd.reloader").handlers:
            handler.flush()
        for stream in (sys.stdout, sys.stderr):
            try:
                if stream is not None:
                    stream.flush()
            except (OSError, ValueError):
                pass

    finisher = threading.Thread(target=finish, daemon=True)
    finisher.start()
    finisher.join(EXIT_TIMEOUT)
    os._exit(status)

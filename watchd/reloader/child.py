"""The serving child: ``main`` runs in the main thread; a watcher thread exits 3 on a change."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from types import FrameType
from typing import Any, NoReturn

from watchd.reloader import report
from watchd.reloader.exiting import RELOAD_STATUS, exit_now
from watchd.reloader.modules import ModuleScanner, error_file
from watchd.reloader.watching import WatchOptions, WatchThread, file_specs, present
from watchd.watch.base import WatchSpec

log = logging.getLogger("watchd.reloader")

# Set to "true" in the environment of the process that serves (runs ``main``); the parent,
# which only re-spawns it, does not have it.
CHILD_ENV = "WATCHD_RELOADER_CHILD"


def is_serving_child() -> bool:
    """True in the process that runs ``main`` under the reloader (not in its parent).

    Start background threads and socket listeners only where this is true, so they start
    once, not once per process.
    """
    return os.environ.get(CHILD_ENV) == "true"


class ServingChild:
    """Watches the files of every imported module plus the extra paths, and ends the
    process with status 3 when one changes."""

    def __init__(self, options: WatchOptions) -> None:
        self._options = options
        self._scanner = ModuleScanner()
        self._lock = threading.Lock()  # the scanner and the exit are shared by two threads
        self._exiting = False
        self._report = os.environ.get(report.REPORT_ENV)
        self._watcher = WatchThread(
            self._reload,
            backend=options.backend,
            debounce=options.debounce,
            refresh=self._new_modules,
        )

    def start(self) -> None:
        """Arm the watches; a change made once this returns is never missed."""
        with self._lock:
            files = self._scanner.scan()
        options = self._options
        self._watcher.start([*file_specs(files, options.backend), *options.extra_specs()])
        log.info("watchd.reloader: watching %d files with %s", len(files), self._watcher.backend)

    def stop(self) -> None:
        self._watcher.stop()

    def run(self, main: Callable[..., object], args: Any, kwargs: Any) -> int:
        """Call ``main``; return the status to exit with. An exception is a failure: the
        traceback is printed and the parent waits for a change before it tries again.
        Any other end (``sys.exit``, ``os._exit``, a return) is the program's own."""
        self._write_report([])
        try:
            main(*args, **kwargs)
        except SystemExit:
            self._finish()
            raise
        except KeyboardInterrupt:
            self._finish()
            return 130
        except BaseException as error:
            traceback.print_exc()
            self._finish(error)
            return 1
        self._finish()
        return 0

    def _finish(self, error: BaseException | None = None) -> None:
        with self._lock:
            self._exiting = True
            self._scanner.scan()  # modules imported up to the failure
            broken = error_file(error) if error is not None else None
            self._write_report([broken] if broken else [], failed=error is not None)

    def _write_report(self, error_files: list[str], failed: bool = False) -> None:
        if self._report:
            report.write(self._report, self._scanner.files, error_files, failed)

    def watch_new_modules(self) -> None:
        """Arm the watches for modules imported since the last look, and return."""
        self._watcher.add(self._new_modules(), wait=True)

    def _new_modules(self) -> list[WatchSpec]:
        """On the watcher's thread: specs for the modules imported since the last look."""
        with self._lock:
            if self._exiting or not self._scanner.changed():
                return []
            new = self._scanner.scan()
        return file_specs(new, self._options.backend)

    def _reload(self, paths: list[str]) -> None:
        """On the watcher's thread: end the whole process with status 3."""
        with self._lock:
            if self._exiting:
                return
            gone, paths = paths, present(paths)
            if not paths:
                log.info("watchd.reloader: %s was removed; reloading once it is back", gone[0])
                return
            self._exiting = True
            more = f" (and {len(paths) - 1} more)" if len(paths) > 1 else ""
            log.info("watchd.reloader: %s changed%s, reloading.", paths[0], more)
            self._write_report([])
            exit_now(RELOAD_STATUS)


_serving: ServingChild | None = None


def watch_new_modules() -> None:
    """In the serving child, watch the modules imported so far before returning (a look
    every half second does so anyway); elsewhere, do nothing."""
    if _serving is not None:
        _serving.watch_new_modules()


_terminating = False


def _exit_zero(signum: int, frame: FrameType | None) -> None:
    """As Django's reloader does: SIGTERM ends ``main`` through SystemExit(0), so its finally
    blocks and context managers run. Only the first: a stop sent to the whole process group
    reaches the child twice (directly, and passed on by the parent), and a second
    SystemExit must not cut the first one's clean-up short."""
    global _terminating
    if not _terminating:
        _terminating = True
        sys.exit(0)


def serve_child(
    main: Callable[..., object], args: Any, kwargs: Any, options: WatchOptions
) -> NoReturn:
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("run_with_reloader() must be called from the main thread")
    global _serving
    signal.signal(signal.SIGTERM, _exit_zero)
    child = _serving = ServingChild(options)
    child.start()
    try:
        status = child.run(main, args, kwargs)
    finally:
        child.stop()
    sys.exit(status)

"""sd_notify to systemd (Type=notify): readiness, status, reload/stop, watchdog.

Outside systemd (no NOTIFY_SOCKET) every method is a no-op that costs nothing: no socket,
no task, no output.
"""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import logging
import os
import time
import warnings
from collections.abc import Awaitable, Callable, Mapping

import sdnotify

log = logging.getLogger("watchd")

# systemd reads one assignment per line and refuses a datagram holding a NUL byte.
_ONE_LINE = str.maketrans({"\n": " ", "\r": " ", "\0": " "})


def watchdog_interval(environ: Mapping[str, str], pid: int) -> float | None:
    """Seconds between WATCHDOG=1 pings: half of WATCHDOG_USEC, as sd_watchdog_enabled(3)
    advises; None when systemd expects no pings from process *pid*."""
    owner = environ.get("WATCHDOG_PID")
    if owner and owner.strip() != str(pid):
        return None
    try:
        usec = int(environ.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    return usec / 2_000_000 if usec > 0 else None


def _wire(text: str) -> str:
    """*text* as one line that survives sdnotify's Latin-1 encoding intact.

    systemd wants UTF-8, and sdnotify drops (silently, or raising with debug) anything
    Latin-1 cannot encode, such as a job name in Japanese. Handing it the UTF-8 bytes
    spelt as Latin-1 characters makes it send exactly those bytes.
    """
    return text.translate(_ONE_LINE).encode("utf-8", "replace").decode("latin-1")


class Notifier:
    """Tells systemd how watchd is doing, through sdnotify.

    Send errors are logged (once), never raised: systemd's bookkeeping must not take the
    daemon down. The watchdog pings come from a task on the daemon's own event loop, so
    they stop when the loop stops turning, which is what the watchdog is there to catch.
    """

    def __init__(
        self,
        clock: Callable[[], int] = time.monotonic_ns,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._clock = clock  # CLOCK_MONOTONIC nanoseconds, as systemd reads them
        self._sleep = sleep
        self._notifier: sdnotify.SystemdNotifier | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self._send_failed = False
        address = os.environ.get("NOTIFY_SOCKET")
        if address:
            try:
                with warnings.catch_warnings():
                    # sdnotify drops a socket it could not connect without closing it.
                    warnings.simplefilter("ignore", ResourceWarning)
                    # debug=True: raise instead of swallowing, so a failure can be reported.
                    self._notifier = sdnotify.SystemdNotifier(debug=True)
                # A receiver that stops reading must not stall the event loop: a message
                # that does not fit is dropped (and the failure logged), never waited for.
                self._notifier.socket.setblocking(False)
            except (OSError, ValueError) as error:
                log.warning("cannot use NOTIFY_SOCKET=%s (%s); not telling systemd", address, error)
        self.enabled = self._notifier is not None
        self.watchdog_interval = (
            watchdog_interval(os.environ, os.getpid()) if self.enabled else None
        )

    @property
    def watchdog_running(self) -> bool:
        return self._watchdog is not None and not self._watchdog.done()

    def _send(self, *assignments: str) -> None:
        if self._notifier is None:
            return
        try:
            self._notifier.notify("\n".join(assignments))
        except OSError as error:
            if not self._send_failed:
                self._send_failed = True
                log.warning("cannot notify systemd (%s); later failures are not logged", error)

    def ready(self, status: str) -> None:
        self._send("READY=1", f"STATUS={_wire(status)}")

    def status(self, status: str) -> None:
        self._send(f"STATUS={_wire(status)}")

    def reloading(self) -> None:
        # sd_notify(3) pairs RELOADING=1 with the time the reload began.
        self._send("RELOADING=1", f"MONOTONIC_USEC={self._clock() // 1000}")

    def stopping(self) -> None:
        self._send("STOPPING=1")

    def start_watchdog(self) -> None:
        """Ping WATCHDOG=1 from the running event loop at half of WATCHDOG_USEC."""
        if self.watchdog_interval is None or self._watchdog is not None:
            return
        if not faulthandler.is_enabled():
            # When the watchdog fires, systemd sends SIGABRT: leave the Python stack of the
            # hung loop in the journal on the way out.
            with contextlib.suppress(RuntimeError, ValueError, OSError):
                faulthandler.enable()
        loop = asyncio.get_running_loop()
        self._watchdog = loop.create_task(self._ping(self.watchdog_interval), name="watchdog")

    async def _ping(self, interval: float) -> None:
        while True:
            self._send("WATCHDOG=1")
            await self._sleep(interval)

    def close(self) -> None:
        """Stop the watchdog pings and close the socket; later calls send nothing."""
        if self._watchdog is not None:
            self._watchdog.cancel()
        if self._notifier is not None:
            sock = getattr(self._notifier, "socket", None)
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.close()
            self._notifier = None
        self.enabled = False

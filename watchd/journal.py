"""Entries for journald over its native protocol, never waiting for it.

One datagram per entry to /run/systemd/journal/socket (systemd's "Native Journal
Protocol"): fields of our own choosing, such as ``WATCHD_JOB=``, which the stream on
stderr cannot carry. When journald's queue is full, entries wait in a bounded queue per
job and go out in turn, one job's entry after another's, so a job that floods cannot
push out the lines of the others; what a full queue refuses is counted for that job.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
import struct
from collections import deque
from collections.abc import Callable, Mapping

SOCKET = "/run/systemd/journal/socket"
# Per job: entries wait for journald up to this many bytes; then they are dropped.
QUEUE_LIMIT = 512 * 1024
# As systemd's own clients ask for: room for big entries and bursts.
SEND_BUFFER = 8 * 1024 * 1024


def encode(fields: Mapping[str, str]) -> bytes:
    """*fields* in the native protocol: ``NAME=value\\n``, or, for a value holding a
    newline, ``NAME\\n`` + its length as 64-bit little-endian + the value + ``\\n``."""
    out = bytearray()
    for name, value in fields.items():
        data = value.encode("utf-8", "replace")
        if b"\n" in data:
            out += name.encode("ascii") + b"\n" + struct.pack("<Q", len(data)) + data + b"\n"
        else:
            out += name.encode("ascii") + b"=" + data + b"\n"
    return bytes(out)


class _Sent:
    DONE, WAIT, FAILED = range(3)


class JournalSocket:
    """A connected, non-blocking datagram socket to journald with fair per-key queues.

    *on_failed* gets each entry journald cannot take at all (no journald, an entry too
    big): the caller writes it elsewhere. *on_gap* gets a key and how many of its entries
    a full queue dropped, once that key's queue has drained.
    """

    def __init__(
        self,
        on_failed: Callable[[str, bytes], None],
        on_gap: Callable[[str, int], None],
        address: str = SOCKET,
        queue_limit: int = QUEUE_LIMIT,
    ) -> None:
        self._address = address
        self._on_failed = on_failed
        self._on_gap = on_gap
        self._queue_limit = queue_limit
        self._queues: dict[str, deque[bytes]] = {}
        self._queued_bytes: dict[str, int] = {}
        self._dropped: dict[str, int] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._socket = self._connect()

    def _connect(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        sock.setblocking(False)
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
        try:
            sock.connect(self._address)
        except OSError:
            sock.close()
            raise
        return sock

    @classmethod
    def available(cls, address: str = SOCKET) -> bool:
        """Whether journald listens at *address*."""
        try:
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        except OSError:
            return False
        with probe:
            try:
                probe.connect(address)
            except OSError:
                return False
        return True

    def send(self, key: str, entry: bytes) -> None:
        """Send *entry* now, or queue it behind *key*'s earlier ones; never wait."""
        if key in self._queues:  # keep the key's order
            self._enqueue(key, entry)
            return
        result = self._send(entry)
        if result == _Sent.WAIT:
            self._enqueue(key, entry)
        elif result == _Sent.FAILED:
            self._on_failed(key, entry)

    def _send(self, entry: bytes) -> int:
        for attempt in range(2):
            try:
                self._socket.send(entry)
            except (BlockingIOError, InterruptedError):
                return _Sent.WAIT
            except OSError as error:
                if error.errno == errno.ENOBUFS:
                    return _Sent.WAIT
                # ECONNREFUSED: journald was restarted, its socket is a new one.
                refused = error.errno in (errno.ECONNREFUSED, errno.ENOTCONN)
                if attempt == 0 and refused and self._reconnect():
                    continue
                return _Sent.FAILED
            return _Sent.DONE
        return _Sent.FAILED

    def _reconnect(self) -> bool:
        try:
            fresh = self._connect()
        except OSError:
            return False
        self._disarm()
        self._socket.close()
        self._socket = fresh
        if self._queues:
            self._arm()
        return True

    def _enqueue(self, key: str, entry: bytes) -> None:
        size = self._queued_bytes.get(key, 0)
        if size + len(entry) > self._queue_limit:
            self._dropped[key] = self._dropped.get(key, 0) + 1
            return
        self._queues.setdefault(key, deque()).append(entry)
        self._queued_bytes[key] = size + len(entry)
        self._arm()

    def _arm(self) -> None:
        if self._loop is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop: the queue goes out with a later send or drain()
        self._loop = loop
        loop.add_writer(self._socket.fileno(), self.drain)

    def _disarm(self) -> None:
        if self._loop is not None:
            if not self._loop.is_closed():
                self._loop.remove_writer(self._socket.fileno())
            self._loop = None

    def drain(self) -> None:
        """Send what waits, one entry of each key in turn, until journald's queue is full."""
        while self._queues:
            for key in list(self._queues):
                queue = self._queues[key]
                result = self._send(queue[0])
                if result == _Sent.WAIT:
                    return
                entry = queue.popleft()
                self._queued_bytes[key] -= len(entry)
                if result == _Sent.FAILED:
                    self._on_failed(key, entry)
                if not queue:
                    self._finish(key)
        self._disarm()

    def _finish(self, key: str) -> None:
        del self._queues[key], self._queued_bytes[key]
        dropped = self._dropped.pop(key, 0)
        if dropped:
            self._on_gap(key, dropped)

    def close(self) -> None:
        self._disarm()
        self._queues.clear()
        self._queued_bytes.clear()
        self._socket.close()

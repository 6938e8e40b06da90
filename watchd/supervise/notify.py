"""A job's private ``NOTIFY_SOCKET``: the sd_notify protocol (``READY=1``, ``STATUS=…``,
``WATCHDOG=1``), received by watchd for its own children (SPEC §10).

One datagram socket per job in the abstract namespace (``@watchd/PID/TOKEN``): no file to
clean up, and reachable by a child that switched user. Anyone may send to it, so every
message carries the sender's credentials (``SO_PASSCRED``, filled in by the kernel) and the
job decides whether the sender is one of its own processes. Mechanism only.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import os
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass

# sd_notify messages are a few short lines; anything longer is not for us.
MAX_MESSAGE = 4096
# Datagrams read per wake-up, so that a flood cannot hold the event loop.
BATCH = 64
_CREDENTIALS = struct.Struct("iII")  # struct ucred: pid, uid, gid
_ANCILLARY = socket.CMSG_SPACE(_CREDENTIALS.size) + socket.CMSG_SPACE(16 * 4)


@dataclass(frozen=True)
class Message:
    pid: int  # the sender, as the kernel saw it (0 when unknown)
    uid: int
    fields: dict[str, str]  # KEY=VALUE lines; a later line wins


def parse(data: bytes) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in data.decode("utf-8", "replace").split("\n"):
        key, equals, value = line.partition("=")
        if equals and key:
            fields[key] = value
    return fields


class NotifySocket:
    """Receives sd_notify datagrams on the running event loop and hands each to
    *on_message*."""

    def __init__(self, on_message: Callable[[Message], None]) -> None:
        self._on_message = on_message
        self._sock = socket.socket(
            socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC
        )
        try:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
            # secrets.token_hex, without importing hashlib (and libcrypto with it)
            name = f"watchd/{os.getpid()}/{os.urandom(8).hex()}"
            self._sock.bind("\0" + name)
        except OSError:
            self._sock.close()
            raise
        self.address = "@" + name  # NOTIFY_SOCKET's spelling of the abstract namespace
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self._sock.fileno(), self._readable)

    def _readable(self) -> None:
        for _ in range(BATCH):
            try:
                data, ancillary, flags, _ = self._sock.recvmsg(MAX_MESSAGE, _ANCILLARY)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            pid, uid = 0, -1
            for level, kind, payload in ancillary:
                if level != socket.SOL_SOCKET:
                    continue
                if kind == socket.SCM_CREDENTIALS and len(payload) >= _CREDENTIALS.size:
                    pid, uid, _gid = _CREDENTIALS.unpack_from(payload)
                elif kind == socket.SCM_RIGHTS:
                    _close_passed_fds(payload)  # file descriptors are not kept here
            if flags & socket.MSG_TRUNC:
                continue
            self._on_message(Message(pid, uid, parse(data)))

    def close(self) -> None:
        if self._sock.fileno() >= 0:
            with contextlib.suppress(ValueError, OSError):
                self._loop.remove_reader(self._sock.fileno())
            self._sock.close()


def _close_passed_fds(payload: bytes) -> None:
    fds = array.array("i")
    fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)

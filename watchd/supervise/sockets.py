"""Held sockets: bound once by watchd, kept open across a job's restarts, handed to every
child as fds 3, 4, … (the systemd socket-activation protocol, ``sd_listen_fds(3)``).

A connection that arrives while no child runs waits in the kernel's backlog for the next
child instead of being refused. Mechanism only: the daemon decides how long a set lives
(until its job is removed or its ``sockets`` change).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import stat
from pathlib import Path

from watchd.config.model import SocketConfig, tcp_address

log = logging.getLogger("watchd.job")


class BindError(OSError):
    """A socket could not be bound; the message names it and says why."""


class HeldSockets:
    """One job's listening sockets, bound together on first use, all or none."""

    def __init__(self, specs: tuple[SocketConfig, ...]) -> None:
        self.specs = specs
        self._sockets: list[socket.socket] | None = None
        self._unix_inodes: dict[Path, tuple[int, int]] = {}

    def bind(self) -> list[socket.socket]:
        """The bound sockets, binding them now if they are not yet; raise BindError."""
        if self._sockets is None:
            bound: list[socket.socket] = []
            try:
                for spec in self.specs:
                    bound.append(self._bind_one(spec))
            except BindError:
                for sock in bound:
                    sock.close()
                self._unlink_own()
                raise
            self._sockets = bound
            log.debug("holding %s", ", ".join(self.addresses()))
        return self._sockets

    @property
    def bound(self) -> bool:
        return self._sockets is not None

    def fds(self) -> tuple[int, ...]:
        return tuple(sock.fileno() for sock in self.bind())

    def names(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.specs)

    def addresses(self) -> list[str]:
        """Where each socket listens (a port 0 shows the port the kernel chose)."""
        if self._sockets is None:
            return [spec.describe() for spec in self.specs]
        return [_address(sock) for sock in self._sockets]

    def close(self) -> None:
        for sock in self._sockets or ():
            sock.close()
        self._sockets = None
        self._unlink_own()

    def _bind_one(self, spec: SocketConfig) -> socket.socket:
        try:
            if spec.kind == "unix":
                return self._bind_unix(spec)
            return _bind_tcp(spec)
        except OSError as error:
            reason = error.strerror or str(error)
            raise BindError(error.errno, f"cannot bind {spec.describe()}: {reason}") from None

    def _bind_unix(self, spec: SocketConfig) -> socket.socket:
        assert spec.path is not None
        path = spec.path
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISSOCK(path.lstat().st_mode):
                path.unlink()  # left by an earlier run; nothing listens on it any more
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(str(path))
            if spec.mode is not None:
                os.chmod(path, spec.mode)
            sock.listen(spec.backlog)
        except OSError:
            sock.close()
            raise
        info = path.lstat()
        self._unix_inodes[path] = (info.st_dev, info.st_ino)
        return sock

    def _unlink_own(self) -> None:
        """Remove the socket files this set made, unless something else replaced them."""
        for path, inode in self._unix_inodes.items():
            with contextlib.suppress(OSError):
                info = path.lstat()
                if (info.st_dev, info.st_ino) == inode:
                    path.unlink()
        self._unix_inodes.clear()


def _bind_tcp(spec: SocketConfig) -> socket.socket:
    host = spec.host
    if not host and socket.has_dualstack_ipv6():
        family, host, dual = socket.AF_INET6, "::", True
    else:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        host, dual = host or "0.0.0.0", False
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if dual:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind((host, spec.port))
        sock.listen(spec.backlog)
    except OSError:
        sock.close()
        raise
    return sock


def _address(sock: socket.socket) -> str:
    if sock.family == socket.AF_UNIX:
        return str(sock.getsockname())
    host, port = sock.getsockname()[:2]
    return tcp_address("" if host in ("::", "0.0.0.0") else host, port)

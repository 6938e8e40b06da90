"""The client side of the control socket, for watchctl and scripts."""

from __future__ import annotations

import errno
import os
import pwd
import socket
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from watchd.control.protocol import MAX_REPLY, ProtocolError, Request, decode_reply, encode
from watchd.paths import find_socket

_REASONS = {
    errno.ENOENT: "no such socket (is watchd running?)",
    errno.EACCES: "permission denied (is your user in the socket's group?)",
    errno.ECONNREFUSED: "connection refused (watchd is not running; the socket is stale)",
    errno.ENOTSOCK: "not a socket",
}


class Unreachable(Exception):
    def __init__(self, path: Path, error: OSError | str) -> None:
        if isinstance(error, OSError):
            error = _REASONS.get(error.errno or 0, error.strerror or str(error))
        super().__init__(f"cannot reach watchd at {path}: {error}")


def socket_path(option: str | None) -> Path:
    """``--socket``, else ``$WATCHD_SOCKET``, else the user's own daemon's or the system's."""
    return Path(option or os.environ.get("WATCHD_SOCKET") or find_socket())


def server_uid(sock: socket.socket) -> int:
    """Who is serving the other end, as the kernel saw them listen (``SO_PEERCRED``)."""
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    uid: int = struct.unpack("3i", raw)[1]
    return uid


def check_server(path: Path, uid: int) -> None:
    """Talk only to a watchd run by root or by ourselves: anyone else's socket may be an
    impostor planted where ours should be."""
    me = os.geteuid()
    if uid in (0, me):
        return
    expected = "root" if me == 0 else f"root or {_name(me)}"
    raise Unreachable(
        path,
        f"the socket is served by {_name(uid)}, not by {expected}; refusing to talk to it "
        "(someone else may have put it there)",
    )


class ControlClient:
    def __init__(self, path: Path, timeout: float | None = 60.0) -> None:
        self.path = path
        self._timeout = timeout

    def request(self, request: Request) -> dict[str, Any]:
        """Send one request and return its (first) reply."""
        return next(self.stream(request))

    def stream(self, request: Request) -> Iterator[dict[str, Any]]:
        """Send one request and yield its reply: every page of it (``"more": true`` until
        the last), and for ``follow`` every message until a hang-up."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self._timeout)
            try:
                sock.connect(str(self.path))
            except OSError as error:
                raise Unreachable(self.path, error) from None
            check_server(self.path, server_uid(sock))
            sock.sendall(encode(request.to_json()))
            if request.follow:
                sock.settimeout(None)
            with sock.makefile("rb") as lines:
                yield from _replies(lines, request.follow)
        finally:
            sock.close()


def _replies(lines: Any, follow: bool) -> Iterator[dict[str, Any]]:
    paging = True
    while True:
        line = lines.readline(MAX_REPLY + 1)
        if not line:
            if paging and not follow:
                raise ProtocolError("watchd closed the connection before its reply was complete")
            return
        if not line.endswith(b"\n"):
            if len(line) > MAX_REPLY:
                raise ProtocolError(f"reply from watchd over {MAX_REPLY // 2**20} MiB; refused")
            raise ProtocolError("watchd closed the connection in the middle of a reply")
        message = decode_reply(line)
        yield message
        paging = bool(message.get("more"))
        if not paging and not follow:
            return  # the connection stays open for more requests; we have none


def _name(uid: int) -> str:
    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"

"""The client side of the control socket, for watchctl and scripts."""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from watchd.control.protocol import MAX_REQUEST, Request, decode_reply, encode

DEFAULT_SOCKET = Path("/run/watchd/control.sock")

_REASONS = {
    errno.ENOENT: "no such socket (is watchd running?)",
    errno.EACCES: "permission denied (is your user in the socket's group?)",
    errno.ECONNREFUSED: "connection refused (watchd is not running; the socket is stale)",
    errno.ENOTSOCK: "not a socket",
}


class Unreachable(Exception):
    def __init__(self, path: Path, error: OSError) -> None:
        reason = _REASONS.get(error.errno or 0, error.strerror or str(error))
        super().__init__(f"cannot reach watchd at {path}: {reason}")


def socket_path(option: str | None) -> Path:
    """``--socket``, else ``$WATCHD_SOCKET``, else the default."""
    return Path(option or os.environ.get("WATCHD_SOCKET") or DEFAULT_SOCKET)


class ControlClient:
    def __init__(self, path: Path, timeout: float | None = 60.0) -> None:
        self.path = path
        self._timeout = timeout

    def request(self, request: Request) -> dict[str, Any]:
        """Send one request and return its reply."""
        return next(self.stream(request))

    def stream(self, request: Request) -> Iterator[dict[str, Any]]:
        """Send one request and yield its reply; for ``follow``, every line until a hang-up."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self._timeout)
            try:
                sock.connect(str(self.path))
            except OSError as error:
                raise Unreachable(self.path, error) from None
            sock.sendall(encode(request.to_json()))
            if request.follow:
                sock.settimeout(None)
            with sock.makefile("rb") as lines:
                for line in lines:
                    if len(line) > 64 * MAX_REQUEST or not line.endswith(b"\n"):
                        break
                    yield decode_reply(line)
                    if not request.follow:
                        return  # the connection stays open for more requests; we have none
        finally:
            sock.close()

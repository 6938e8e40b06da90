"""Sockets the reloader's parent binds once and hands to every child as fds 3, 4, … (the
systemd socket-activation protocol, as the daemon's held sockets): a connection that
arrives during a reload waits in the kernel's backlog for the next child, none is refused.

The parent spawns each child through the daemon's exec shim, which moves the sockets onto
3, 4, … and sets ``LISTEN_PID`` to the child's own PID, as ``sd_listen_fds(3)`` requires
and as no spawn API can from outside.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

import yaml

from watchd.config.model import SocketConfig, tcp_address
from watchd.config.nodes import Invalid
from watchd.config.serving import sockets as socket_parser
from watchd.supervise import shim
from watchd.supervise.sockets import HeldSockets

SHIM_SOURCE = Path(shim.__file__).read_text()

# What ``sockets=[…]`` takes: an address string, a mapping like a job's ``sockets`` entry,
# or a socket the program bound and listens on itself.
SocketSpec = str | int | dict[str, object] | socket.socket


def parse(items: Iterable[SocketSpec], default_name: str) -> list[SocketConfig | socket.socket]:
    """Each item as a socket to bind (or a socket already bound); raise ValueError saying
    which item is wrong and how. Strings: ``"127.0.0.1:8000"``, ``"[::1]:8000"``,
    ``":8000"`` (every address), a port number, or a unix socket path (``"unix:PATH"`` or an
    absolute path); mappings: ``{"tcp": ADDR | "unix": PATH, "name": …, "mode": "0660"}``."""
    found: list[SocketConfig | socket.socket] = []
    for index, item in enumerate(items):
        if isinstance(item, socket.socket):
            found.append(item)
            continue
        entry = _as_entry(item)
        node = yaml.compose(yaml.safe_dump([entry]))
        assert node is not None
        try:
            (spec,) = socket_parser(default_name)(node)
        except Invalid as error:
            raise ValueError(f"sockets[{index}]: {error.message}, in {item!r}") from None
        found.append(spec)
    return found


def _as_entry(item: str | int | dict[str, object]) -> dict[str, object]:
    if isinstance(item, dict):
        entry = dict(item)
    elif isinstance(item, str) and (item.startswith("unix:") or item.startswith("/")):
        entry = {"unix": item.removeprefix("unix:")}
    else:
        entry = {"tcp": item}
    path = entry.get("unix")
    if isinstance(path, str | Path):
        entry["unix"] = str(Path(path).absolute())  # relative to here, not to a YAML file
    return entry


class ParentSockets:
    """The parent's listening sockets, bound on creation, closed by :meth:`close`."""

    def __init__(self, items: Iterable[SocketSpec], default_name: str) -> None:
        parsed = parse(items, default_name)
        self._held = HeldSockets(tuple(item for item in parsed if isinstance(item, SocketConfig)))
        bound = iter(self._held.bind())  # raises BindError (an OSError) naming the address
        self.sockets: list[socket.socket] = []
        names: list[str] = []
        for item in parsed:
            if isinstance(item, SocketConfig):
                self.sockets.append(next(bound))
                names.append(item.name)
            else:
                self.sockets.append(item)
                names.append(default_name)
        self.names = tuple(names)

    @classmethod
    def inherited(cls) -> ParentSockets | None:
        """The sockets this process was given (``LISTEN_FDS`` for its PID), to pass on to
        its children in turn; None when it was given none."""
        found = inherited_sockets()
        if not found:
            return None
        names = os.environ.get("LISTEN_FDNAMES", "").split(":")
        held = cls((), "")
        held.sockets = found
        held.names = tuple(
            names[i] if i < len(names) and names[i] else "unknown" for i in range(len(found))
        )
        return held

    def fds(self) -> tuple[int, ...]:
        return tuple(sock.fileno() for sock in self.sockets)

    def addresses(self) -> list[str]:
        """Where each socket listens (a port 0 shows the port the kernel chose)."""
        found = []
        for sock in self.sockets:
            if sock.family == socket.AF_UNIX:
                found.append(str(sock.getsockname()))
            else:
                host, port = sock.getsockname()[:2]
                found.append(tcp_address("" if host in ("::", "0.0.0.0") else host, port))
        return found

    def close(self) -> None:
        self._held.close()


def shim_argv(
    argv: Sequence[str], fds: Sequence[int], names: Sequence[str], status: int
) -> list[str]:
    """*argv* run through the exec shim, which passes *fds* as 3, 4, … with LISTEN_*."""
    return [
        sys.executable,
        "-I",
        "-S",
        "-c",
        SHIM_SOURCE,
        f"status={status}",
        "fds=" + ",".join(map(str, fds)),
        "fdnames=" + ":".join(names),
        "--",
        *argv,
    ]


def shim_failure(report: bytes, program: str) -> OSError | None:
    """What the shim wrote on its status pipe (``STEP NUL ERRNO NUL FILENAME``) as an
    OSError, or None when it exec'd the program (it wrote nothing)."""
    if not report:
        return None
    step, number, filename = report.decode(errors="replace").split("\0", 2)
    code = int(number)
    return OSError(code, f"{step}: {os.strerror(code) if code else 'failed'}", filename or program)


def inherited_sockets() -> list[socket.socket]:
    """The sockets passed to this process as fds 3, 4, … (``LISTEN_FDS``, for this PID), in
    order; their names are ``LISTEN_FDNAMES``. Empty when none were passed."""
    if os.environ.get("LISTEN_PID") != str(os.getpid()):
        return []
    count = int(os.environ.get("LISTEN_FDS", "0") or 0)
    return [socket.socket(fileno=fd) for fd in range(3, 3 + count)]

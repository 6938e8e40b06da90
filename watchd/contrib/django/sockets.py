"""``runserver`` on a socket it was given (``LISTEN_FDS``: by watchd's daemon, systemd, or
watchd's reloader) instead of one it binds itself, so a client that connects while it
restarts waits in the socket's backlog for the next server instead of being refused.

Two ways the socket arrives: ``runserver --noreload`` run by a job with ``sockets`` gets it
with ``LISTEN_PID`` its own PID; runserver with its own reloader gets it in the reloader's
parent, which spawns each serving child with the parent's file descriptors (Django's
``restart_with_reloader`` passes ``close_fds=False``) and environment, so the child takes a
``LISTEN_PID`` that names its parent as its own.
"""

from __future__ import annotations

import os
import socket
import socketserver
from typing import Any

from django.utils import autoreload  # type: ignore[import-untyped]

LISTEN_FDS_START = 3


def inherited_socket() -> socket.socket | None:
    """The first TCP socket passed to this process (or to runserver's reloader parent, for
    its serving child), or None. Marks it as this process's own (``LISTEN_PID``)."""
    env = os.environ
    count = int(env.get("LISTEN_FDS", "0") or 0)
    owner = env.get("LISTEN_PID")
    if count <= 0 or owner is None:
        return None
    from_parent = env.get(autoreload.DJANGO_AUTORELOAD_ENV) == "true" and owner == str(os.getppid())
    if owner != str(os.getpid()) and not from_parent:
        return None
    env["LISTEN_PID"] = str(os.getpid())
    for fd in range(LISTEN_FDS_START, LISTEN_FDS_START + count):
        try:
            sock = socket.socket(fileno=fd)
        except OSError:
            continue  # not a socket (closed on the way): nothing to serve there
        if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.type == socket.SOCK_STREAM:
            return sock
        sock.detach()  # leave the descriptor to whoever else may want it
    return None


def inherited_server(base: type[Any], sock: socket.socket) -> type[Any]:
    """*base* (runserver's ``server_cls``) serving *sock* instead of binding the address
    runserver was given; the backlog stays the one the socket was made with."""

    class InheritedSocketServer(base):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, bind_and_activate=False, **kwargs)
            socketserver.TCPServer.server_close(self)  # the unbound socket it made
            self.socket = sock
            # What HTTPServer.server_bind and WSGIServer.server_bind would set, minus bind.
            self.server_address = sock.getsockname()
            host, port = self.server_address[:2]
            self.server_name = socket.getfqdn(host)
            self.server_port = port
            self.setup_environ()

    return InheritedSocketServer


def serve_inherited_socket() -> bool:
    """Make runserver serve the socket this process was given, if it was given one."""
    sock = inherited_socket()
    if sock is None:
        return False
    # Imported only now: it brings in the whole WSGI server stack.
    from django.core.management.commands import runserver  # type: ignore[import-untyped]  # noqa: PLC0415

    command = runserver.Command
    command.server_cls = inherited_server(command.server_cls, sock)
    return True

"""Held sockets reach each child blocking, however an earlier child left them."""

from __future__ import annotations

import asyncio
import signal
import socket
import sys

from watchd.supervise.process import ChildProcess, SpawnSpec

REPORT = """\
import os, socket, sys
fds = int(os.environ["LISTEN_FDS"])
names = os.environ["LISTEN_FDNAMES"].split(":")
blocking = all(os.get_blocking(3 + i) for i in range(fds))
found = [socket.socket(fileno=3 + i).getsockname()[1] for i in range(fds)]
print(os.environ["LISTEN_PID"] == str(os.getpid()), names, found, blocking)
sys.stdout.flush()
"""


def run(spec: SpawnSpec) -> list[str]:
    lines: list[str] = []

    async def scenario() -> None:
        child = ChildProcess.spawn(spec, lambda line, _at: lines.append(line))
        await child.finish(signal.SIGTERM, 5)

    asyncio.run(scenario())
    return lines


def test_each_child_gets_its_sockets_in_blocking_mode() -> None:
    first, second = socket.socket(), socket.socket()
    try:
        for sock in (first, second):
            sock.bind(("127.0.0.1", 0))
            sock.listen()
            sock.setblocking(False)  # as a previous child may have left it
        fds = (second.fileno(), first.fileno())  # not in the order of their numbers
        spec = SpawnSpec((sys.executable, "-c", REPORT), fd_names=("b", "a"), fds=fds)
        (line,) = run(spec)
        ports = [second.getsockname()[1], first.getsockname()[1]]
        assert line == f"True ['b', 'a'] {ports} True"
    finally:
        first.close()
        second.close()

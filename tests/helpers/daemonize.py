"""A job that starts daemons the classic way, as init scripts do: fork, setsid, fork.

    daemonize.py RECORD COUNT [--ignore-term] [--exit] [--notify]

Appends to RECORD (one line per write, so concurrent writers never mix):

- ``main PID OLD`` at start, OLD being how many daemons recorded earlier are still alive
  (a restart that waited for the old tree to go finds 0);
- ``daemon PID`` from each daemon once it runs (in its own session, outside the group).

Then the main process sleeps until signalled (or exits at once with --exit). Daemons sleep
forever; with --ignore-term they ignore SIGTERM, so only a SIGKILL ends them. With --notify
the first daemon, not the main process, sends READY=1 to NOTIFY_SOCKET, as a program that
daemonizes before it serves does.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from pathlib import Path


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def append(record: str, line: str) -> None:
    fd = os.open(record, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def earlier_daemons(record: str) -> list[int]:
    try:
        lines = Path(record).read_text().splitlines()
    except FileNotFoundError:
        return []
    return [int(line.split()[1]) for line in lines if line.startswith("daemon ")]


def notify_ready() -> None:
    address = os.environ["NOTIFY_SOCKET"]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.sendto(b"READY=1", "\0" + address[1:] if address.startswith("@") else address)


def daemonize(record: str, ignore_term: bool, notify: bool) -> None:
    if os.fork() > 0:
        return
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    if ignore_term:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    append(record, f"daemon {os.getpid()}")
    if notify:
        notify_ready()
    while True:
        time.sleep(3600)


def main(args: list[str]) -> None:
    record, count = args[0], int(args[1])
    old = sum(alive(pid) for pid in earlier_daemons(record))
    append(record, f"main {os.getpid()} {old}")
    for number in range(count):
        daemonize(record, "--ignore-term" in args, number == 0 and "--notify" in args)
    for _ in range(count):
        os.wait()  # the first fork of each daemon exits at once
    if "--exit" in args:
        return
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main(sys.argv[1:])

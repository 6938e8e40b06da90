"""A job for tests: tries what a job may or may not do under the unit's hardening and
writes the outcome, as JSON, to the file named by its one argument.

It runs as the job's user, with watchd's held sockets from fd 3 on.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path


def attempt(action: object) -> str:
    """ "ok", or the error the action failed with."""
    try:
        if callable(action):
            action()
    except OSError as error:
        return error.strerror or type(error).__name__
    return "ok"


def make_cgroup() -> None:
    """A cgroup below the job's own, as watchd makes one per job."""
    text = Path("/proc/self/cgroup").read_text()
    own = next((line[3:] for line in text.splitlines() if line.startswith("0::")), None)
    if own is None:
        raise OSError(0, f"no cgroup2 line in {text!r}")
    path = Path("/sys/fs/cgroup") / own.lstrip("/") / f"probe-{os.getpid()}"
    path.mkdir()
    path.rmdir()


def packet_socket() -> None:
    socket.socket(socket.AF_PACKET, socket.SOCK_RAW).close()


def write_usr_local() -> None:
    path = Path(f"/usr/local/probe-{os.getpid()}")
    path.write_text("probe\n")
    path.unlink()


def main() -> int:
    out = Path(sys.argv[1])
    held = socket.socket(fileno=3) if os.environ.get("LISTEN_FDS") == "1" else None
    visible_pids = [int(name) for name in os.listdir("/proc") if name.isdigit()]
    result = {
        "uid": os.getuid(),
        "held": list(held.getsockname()) if held else None,
        "sees_pid_1": 1 in visible_pids,
        "cgroup": attempt(make_cgroup),
        "packet_socket": attempt(packet_socket),
        "write_usr_local": attempt(write_usr_local),
    }
    if held is not None:
        held.detach()  # watchd's to keep
    temporary = out.with_suffix(".tmp")
    temporary.write_text(json.dumps(result))
    temporary.rename(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

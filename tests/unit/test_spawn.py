"""The one spawn path: what a child finds when it starts, and how a failed start is told."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.helpers.daemon import REPO
from tests.helpers.procs import alive
from tests.helpers.wait import wait_for, wait_until
from watchd.supervise.process import ChildProcess, SpawnSpec

# Prints what the child sees: its pid, the LISTEN_* variables, its open fds and their
# socket addresses, and its parent-death signal.
REPORT = textwrap.dedent(
    """
    import ctypes, json, os, socket
    fds = sorted(int(fd) for fd in os.listdir("/proc/self/fd"))[:-1]  # not listdir's own
    names = {}
    for fd in fds:
        if fd > 2:
            try:
                names[fd] = socket.socket(fileno=os.dup(fd)).getsockname()
            except OSError:
                names[fd] = os.readlink(f"/proc/self/fd/{fd}")
    signum = ctypes.c_int()
    ctypes.CDLL(None).prctl(2, ctypes.byref(signum), 0, 0, 0)
    print(json.dumps({
        "pid": os.getpid(),
        "env": {k: v for k, v in os.environ.items() if k.startswith("LISTEN_")},
        "fds": fds,
        "names": names,
        "pdeathsig": signum.value,
    }))
    """
)


def run_child(spec: SpawnSpec) -> tuple[int, ChildProcess, list[str]]:
    lines: list[str] = []

    async def scenario() -> tuple[int, ChildProcess]:
        child = ChildProcess.spawn(spec, lambda line, _at: lines.append(line))
        returncode = await wait_for(child.finish(signal.SIGTERM, 5.0), "the child to exit")
        return returncode, child

    returncode, child = asyncio.run(scenario())
    return returncode, child, lines


def test_the_child_gets_sockets_as_fd_3_and_4_and_nothing_else() -> None:
    first = socket.create_server(("127.0.0.1", 0))
    second = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    address = list(first.getsockname())
    try:
        spec = SpawnSpec(
            argv=(sys.executable, "-c", REPORT),
            fds=(second.fileno(), first.fileno()),
            fd_names=("admin", "http"),
        )
        returncode, _, lines = run_child(spec)
    finally:
        first.close()
        second.close()
    assert returncode == 0, lines
    report = json.loads(lines[-1])
    assert report["fds"] == [0, 1, 2, 3, 4]
    assert report["env"] == {
        "LISTEN_FDS": "2",
        "LISTEN_PID": str(report["pid"]),
        "LISTEN_FDNAMES": "admin:http",
    }
    assert report["names"]["4"] == address


def test_without_sockets_the_child_inherits_only_stdio_and_gets_the_death_signal() -> None:
    returncode, _, lines = run_child(SpawnSpec(argv=(sys.executable, "-c", REPORT)))
    assert returncode == 0
    report = json.loads(lines[-1])
    assert report["fds"] == [0, 1, 2]
    assert report["env"] == {}
    assert report["pdeathsig"] == signal.SIGKILL


def test_a_program_that_cannot_be_executed_is_a_start_failure_with_the_reason(
    tmp_path: Path,
) -> None:
    script = tmp_path / "not-executable"
    script.write_text("#!/bin/sh\necho hello\n")
    _, child, lines = run_child(SpawnSpec(argv=(str(script),)))
    assert child.exec_error is not None
    assert child.exec_error.strerror == "Permission denied"
    assert child.exec_error.filename == str(script)
    assert lines == []


def test_the_direct_child_dies_with_a_killed_parent(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    parent = textwrap.dedent(
        f"""
        import asyncio, signal
        from pathlib import Path
        from watchd.supervise.process import ChildProcess, SpawnSpec

        async def main():
            child = ChildProcess.spawn(SpawnSpec(argv=("sleep", "600")), print)
            assert await child.execed() is None
            Path({str(pid_file)!r}).write_text(str(child.pid))
            await asyncio.sleep(600)

        asyncio.run(main())
        """
    )
    env = dict(os.environ, PYTHONPATH=str(REPO))
    process = subprocess.Popen([sys.executable, "-c", parent], env=env)
    try:
        text = wait_until(lambda: pid_file.exists() and pid_file.read_text(), "the child's pid")
        child = int(text)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        wait_until(lambda: not alive(child), "the orphan to die")
    finally:
        process.kill()
        process.wait()

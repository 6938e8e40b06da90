"""The control socket under abuse: every request shape gets a reply, big replies arrive
whole, slow readers cost bounded memory, and nobody can take the daemon's descriptors."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.daemon import Daemon, Record, child_command, running_daemon
from tests.helpers.wait import wait_until
from tests.integration.test_control import _exchange
from tests.integration.test_control_socket import AS_NOBODY


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    with running_daemon(tmp_path) as running:
        yield running


def python_job(code: str, **settings: Any) -> dict[str, Any]:
    return {"command": [sys.executable, "-c", textwrap.dedent(code)], **settings}


DEEP = b"[" * 30_000 + b"]" * 30_000
HOSTILE = [
    DEEP,
    b'{"command": "status", "jobs": ' + DEEP + b"}",
    b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
    b'{"command": ["status"]}',
    b'{"command": {"status": true}}',
    b'{"command": "logs", "jobs": ["web"], "lines": ' + b"9" * 5000 + b"}",
    b'{"command": "status", "jobs": ["\\ud800"]}',
    b'{"command": "restart", "jobs": ["\\udfff"]}',
    b'{"command": "logs", "jobs": ["web\\ud800"], "lines": 1}',
    b'{"command": "status", "jobs": [' + b"1" * 5000 + b"]}",
    b'{"command": "logs", "jobs": ["web"], "lines": NaN}',
]


def test_every_request_shape_gets_a_reply_and_no_traceback(daemon: Daemon, tmp_path: Path) -> None:
    daemon.write_jobs("jobs.yaml", {"web": {"command": child_command(tmp_path / "web")}})
    daemon.start()
    for payload in HOSTILE:
        assert len(payload) < 64 * 1024
        reply = _exchange(daemon.socket, payload + b"\n")
        assert reply["ok"] is False, (payload[:60], reply)
        assert reply["error"], payload[:60]
    assert "unknown job: \ud800" in _exchange(daemon.socket, HOSTILE[6] + b"\n")["error"]
    assert daemon.watchctl("status").returncode == 0
    assert "Traceback" not in daemon.log()


def test_logs_larger_than_a_reply_line_arrive_whole(daemon: Daemon, tmp_path: Path) -> None:
    daemon.write_jobs(
        "jobs.yaml",
        {
            "big": python_job(
                """
                for i in range(120):
                    print(f"{i:05d}" + "x" * 59_995, flush=True)
                """,
                log_lines=200,
            )
        },
    )
    daemon.start()
    wait_until(
        lambda: daemon.watchctl("logs", "big", "-n", "1").stdout.startswith("00119"),
        "the last line in the job's log",
    )
    result = daemon.watchctl("logs", "big", "-n", "200")  # 7.2 MB
    assert (result.returncode, result.stderr) == (0, "")
    lines = result.stdout.splitlines()
    assert [line[:5] for line in lines] == [f"{i:05d}" for i in range(120)]
    assert all(len(line) == 60_000 for line in lines)


def test_followers_that_stop_reading_cost_bounded_memory_and_are_told_what_they_missed(
    daemon: Daemon, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    daemon.write_jobs(
        "jobs.yaml",
        {
            "flood": python_job(
                f"""
                import os, sys, time
                while not os.path.exists({str(go)!r}):
                    time.sleep(0.01)
                for i in range(600):  # 39 MB
                    sys.stdout.write(f"{{i:05d}}" + "x" * 65_000 + "\\n")
                sys.stdout.flush()
                """,
                log_lines=10,
            )
        },
    )
    daemon.start()
    assert daemon.process is not None
    followers = [socket.socket(socket.AF_UNIX) for _ in range(3)]
    try:
        for follower in followers:
            follower.connect(str(daemon.socket))
            follower.sendall(b'{"command":"logs","jobs":["flood"],"lines":0,"follow":true}\n')
            assert json.loads(follower.makefile("rb").readline())["ok"] is True
        before = rss_kib(daemon.process.pid)
        go.touch()
        wait_until(lambda: daemon.job("flood")["state"] == "exited", "the flood to end", 120)
        grown = rss_kib(daemon.process.pid) - before
        assert grown < 40 * 1024, f"watchd grew by {grown} KiB for three stalled followers"
        lines, missed = read_follow(followers[0], 600)
        assert missed > 0 and lines + missed == 600
    finally:
        for follower in followers:
            follower.close()


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def read_follow(sock: socket.socket, expected: int) -> tuple[int, int]:
    """Read live lines and gaps until *expected* lines are accounted for."""
    sock.settimeout(30)
    lines = missed = 0
    with sock.makefile("rb") as stream:
        while lines + missed < expected:
            message = json.loads(stream.readline())
            lines += "line" in message
            missed += message.get("gap", 0)
    return lines, missed


def test_the_soft_open_files_limit_is_raised_to_the_hard_limit(daemon: Daemon) -> None:
    daemon.start(prefix=("prlimit", "--nofile=256:4096"))
    assert daemon.process is not None
    limits = Path(f"/proc/{daemon.process.pid}/limits").read_text()
    (row,) = [line for line in limits.splitlines() if line.startswith("Max open files")]
    assert row.split()[3:5] == ["4096", "4096"]


HOG = textwrap.dedent(
    """
    import socket, sys, time
    held = []
    requests = b'{"command": "status"}\\n' * 3000
    deadline = time.monotonic() + 10
    while len(held) < int(sys.argv[2]) and time.monotonic() < deadline:
        sock = socket.socket(socket.AF_UNIX)
        sock.setblocking(False)
        try:
            sock.connect(sys.argv[1])
        except BlockingIOError:  # the backlog is full: try again
            sock.close()
            time.sleep(0.001)
            continue
        try:
            sock.send(requests)  # and never read a reply
        except OSError:
            pass
        held.append(sock)
    print(len(held), flush=True)
    sys.stdin.read()
    """
)


def test_an_unprivileged_user_cannot_take_every_descriptor(daemon: Daemon, tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root, to run the daemon as root and the clients as nobody")
    record = Record(tmp_path / "web")
    daemon.write_jobs("jobs.yaml", {"web": {"command": child_command(record.path)}})
    daemon.start(prefix=("prlimit", "--nofile=200:200"))
    assert daemon.process is not None
    record.wait_starts(1)
    os.chmod(daemon.socket.parent, 0o755)
    os.chmod(daemon.socket, 0o666)
    log_before = len(daemon.log())
    with subprocess.Popen(
        [*AS_NOBODY, sys.executable, "-c", HOG, str(daemon.socket), "400"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as hog:
        try:
            assert hog.stdout is not None
            assert int(hog.stdout.readline()) > 0
            status = daemon.watchctl("status")
            assert status.returncode == 0, status.stderr
            restarted = daemon.watchctl("restart", "web")
            assert restarted.returncode == 0, restarted.stderr
            assert daemon.job("web")["state"] == "running"
            assert len(os.listdir(f"/proc/{daemon.process.pid}/fd")) < 100
        finally:
            hog.communicate("", timeout=60)
    assert len(daemon.log()) - log_before < 100_000

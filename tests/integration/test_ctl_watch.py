"""``watchctl status --watch``: the table redrawn in place on a real terminal, one table
after another on a pipe, Ctrl-C ending it with 0, and watchd going away and coming back."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.daemon import REPO, Daemon, Record, child_command, running_daemon
from tests.helpers.tty import Terminal
from tests.helpers.wait import DEFAULT_TIMEOUT

ENV = {**{k: v for k, v in os.environ.items() if k != "NO_COLOR"}, "PYTHONPATH": str(REPO)}
HOME, CLEAR = b"\033[H", b"\033[2J"
RUNNING = b"\033[32mrunning\033[0m"  # the state word, in its colour, in a row of the table


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    with running_daemon(tmp_path) as running:
        running.write_jobs("jobs.yaml", {"web": {"command": child_command(tmp_path / "web")}})
        running.start()
        Record(tmp_path / "web").wait_starts(1)
        yield running


def watchctl(daemon: Daemon, *args: str) -> list[str]:
    return [sys.executable, "-m", "watchd.ctl", "--socket", str(daemon.socket), *args]


def test_on_a_terminal_the_table_is_redrawn_in_place_until_ctrl_c(
    daemon: Daemon, tmp_path: Path
) -> None:
    terminal = Terminal(watchctl(daemon, "status", "--watch", "--interval", "0.2"), ENV)
    try:
        screen = terminal.read_until(HOME, count=3)  # three frames
        assert screen.count(CLEAR) == 1  # the screen is cleared once, then drawn over
        frame = screen.split(HOME)[2]
        assert b"Every 200ms: watchctl status" in frame
        assert b"JOB" in frame and b"web" in frame and RUNNING in frame
        assert b"\033[K" in frame  # each line cleared to its end: no leftovers of the last
        terminal.type(b"\x03")  # Ctrl-C, through the terminal's line discipline: SIGINT
        assert terminal.wait() == 0
        assert terminal.screen.endswith(b"\033[?7h\033[?25h")  # wrapping and cursor back
    finally:
        terminal.close()


def test_the_terminal_says_when_watchd_is_gone_and_shows_the_table_when_it_is_back(
    daemon: Daemon, tmp_path: Path
) -> None:
    terminal = Terminal(watchctl(daemon, "status", "--watch", "--interval", "0.2"), ENV)
    try:
        terminal.read_until(RUNNING)
        assert daemon.process is not None
        daemon.process.send_signal(signal.SIGTERM)
        daemon.process.wait(60)
        screen = terminal.read_until(b"cannot reach watchd at")
        gone = screen.rindex(b"cannot reach watchd at")
        assert str(daemon.socket).encode() in screen[gone:]
        assert b"trying again every 200ms" in terminal.read_until(b"trying again", since=gone)
        daemon.start(wait_ready=False)  # the same socket again
        daemon.wait_log("ready:", count=2)
        terminal.read_until(RUNNING, since=gone)  # the table again
        terminal.type(b"\x03")
        assert terminal.wait() == 0
    finally:
        terminal.close()


def test_on_a_pipe_each_refresh_is_a_table_of_its_own_without_escapes(daemon: Daemon) -> None:
    with subprocess.Popen(
        watchctl(daemon, "status", "--interval", "0.2"), stdout=subprocess.PIPE, env=ENV
    ) as watching:
        assert watching.stdout is not None
        out = b""
        try:
            while out.count(b"Every 200ms") < 3:
                out += watching.stdout.read1(65536)  # type: ignore[attr-defined]
        finally:
            watching.send_signal(signal.SIGINT)
            assert watching.wait(DEFAULT_TIMEOUT) == 0
    assert b"\033" not in out
    frames = out.split(b"\n\nEvery 200ms")  # a blank line between one table and the next
    assert len(frames) >= 3
    for frame in frames[:3]:
        lines = frame.splitlines()
        assert lines[2].split()[:2] == [b"JOB", b"STATE"]
        assert lines[3].split()[:2] == [b"web", b"running"]


def test_watching_unknown_jobs_exits_4_and_json_is_refused(daemon: Daemon) -> None:
    unknown = daemon.watchctl("status", "--watch", "ghost")
    assert unknown.returncode == 4 and "unknown job: ghost" in unknown.stderr
    refused = daemon.watchctl("status", "--watch", "--json")
    assert refused.returncode == 2 and "events -f" in refused.stderr
    too_fast = daemon.watchctl("status", "--interval", "1ms")
    assert too_fast.returncode == 2 and "at least 0.1s" in too_fast.stderr

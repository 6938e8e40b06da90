"""``watchctl logs a b [-f] [-n N]`` against a real daemon: several jobs' lines interleaved
in the order watchd read them, each with its time and job name."""

from __future__ import annotations

import re
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.daemon import Daemon, running_daemon
from tests.helpers.wait import wait_until
from watchd.control.client import ControlClient
from watchd.control.protocol import Command, Request

# Prints NAME-1 at once, then NAME-N each time the test creates the file NAME-goN.
TALKER = textwrap.dedent(
    """
    import os, sys, time
    name, where = sys.argv[1], sys.argv[2]
    print(f"{name}-1", flush=True)
    n = 2
    while True:
        while not os.path.exists(os.path.join(where, f"{name}-go{n}")):
            time.sleep(0.01)
        print(f"{name}-{n}", flush=True)
        n += 1
    """
)
STAMP = r"(?:\d{4}-\d\d-\d\d )?\d\d:\d\d:\d\d\.\d{3}"


def unstamped(line: str) -> str:
    """The line without its time, which must be there: ``14:02:11.123 web | …``."""
    match = re.fullmatch(rf"{STAMP} (.*)", line)
    assert match, line
    return match.group(1)


def talker(name: str, where: Path) -> dict[str, Any]:
    return {"command": [sys.executable, "-c", TALKER, name, str(where)]}


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    with running_daemon(tmp_path) as running:
        running.write_jobs(
            "jobs.yaml", {"a": talker("a", tmp_path), "web": talker("web", tmp_path)}
        )
        running.start()
        yield running


def say(daemon: Daemon, where: Path, name: str, n: int) -> None:
    """Have job *name* print ``name-n``, and wait until watchd has read it."""
    (where / f"{name}-go{n}").touch()
    wait_until(lambda: f"{name}-{n}\n" in daemon.watchctl("logs", name).stdout, f"{name}-{n}")


def test_several_jobs_come_interleaved_in_the_order_read_with_time_and_name(
    daemon: Daemon, tmp_path: Path
) -> None:
    before = time.time()
    wait_until(lambda: daemon.watchctl("logs", "a").stdout == "a-1\n", "a's first line")
    wait_until(lambda: daemon.watchctl("logs", "web").stdout == "web-1\n", "web's first line")
    say(daemon, tmp_path, "a", 2)
    say(daemon, tmp_path, "web", 2)
    say(daemon, tmp_path, "a", 3)
    after = time.time()

    result = daemon.watchctl("logs", "a", "web")
    assert (result.returncode, result.stderr) == (0, "")
    lines = [unstamped(line) for line in result.stdout.splitlines()]
    # The two first lines were read in either order; from then on the test set the order.
    assert sorted(lines[:2]) == ["a   | a-1", "web | web-1"]
    assert lines[2:] == ["a   | a-2", "web | web-2", "a   | a-3"]

    # -n counts the lines of all the named jobs together: the newest N of the interleaving.
    last = daemon.watchctl("logs", "web", "a", "-n", "2").stdout.splitlines()
    assert [unstamped(line) for line in last] == ["web | web-2", "a   | a-3"]
    # No job named is every job.
    assert daemon.watchctl("logs").stdout == result.stdout
    assert daemon.watchctl("logs", "-n", "2").stdout.splitlines() == last

    # On the wire: each line with the time watchd read it, in order.
    client = ControlClient(daemon.socket)
    (reply,) = client.stream(Request(Command.LOGS, ("a", "web"), lines=None))
    assert reply["lines"][2:] == ["a-2", "web-2", "a-3"]
    assert reply["job"][2:] == ["a", "web", "a"]
    stamps = reply["at"]
    assert before - 1 <= stamps[0] and stamps == sorted(stamps) and stamps[-1] <= after + 1


def test_one_job_prints_its_lines_as_they_are_unless_asked_for_timestamps(
    daemon: Daemon, tmp_path: Path
) -> None:
    wait_until(lambda: daemon.watchctl("logs", "a").stdout == "a-1\n", "a's first line")
    stamped = daemon.watchctl("logs", "a", "--timestamps").stdout.splitlines()
    assert len(stamped) == 1 and re.fullmatch(rf"{STAMP} a \| a-1", stamped[0]), stamped
    # Naming a job twice is naming it once.
    assert daemon.watchctl("logs", "a", "a").stdout == "a-1\n"


def test_follow_keeps_printing_every_named_jobs_new_lines(daemon: Daemon, tmp_path: Path) -> None:
    wait_until(lambda: daemon.watchctl("logs", "a").stdout == "a-1\n", "a's first line")
    wait_until(lambda: daemon.watchctl("logs", "web").stdout == "web-1\n", "web's first line")
    with daemon.following("logs", "a", "web", "-f") as follow:
        # The tail comes once the follower is listening: nothing can fall in between.
        tail = {unstamped(follow.readline().rstrip("\n")) for _ in range(2)}
        assert tail == {"a   | a-1", "web | web-1"}
        (tmp_path / "web-go2").touch()
        assert unstamped(follow.readline().rstrip("\n")) == "web | web-2"
        (tmp_path / "a-go2").touch()
        assert unstamped(follow.readline().rstrip("\n")) == "a   | a-2"


def test_a_job_whose_definition_changes_keeps_its_lines_and_its_followers(
    daemon: Daemon, tmp_path: Path
) -> None:
    wait_until(lambda: daemon.watchctl("logs", "a").stdout == "a-1\n", "a's first line")
    with daemon.following("logs", "a", "-f") as follow:
        assert follow.readline() == "a-1\n"
        changed = {**talker("a", tmp_path), "env": {"CHANGED": "1"}}
        daemon.write_jobs("jobs.yaml", {"a": changed, "web": talker("web", tmp_path)})
        assert follow.readline() == "a-1\n"  # the new child's first line, live
    assert daemon.watchctl("logs", "a").stdout == "a-1\na-1\n"  # the old child's too


def test_an_unknown_job_among_them_exits_4_naming_it(daemon: Daemon) -> None:
    result = daemon.watchctl("logs", "a", "ghost")
    assert result.returncode == 4
    assert "unknown job: ghost" in result.stderr and result.stdout == ""
    assert daemon.watchctl("logs", "ghost", "-f").returncode == 4

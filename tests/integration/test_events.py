"""``watchctl events`` against a real daemon: every fact once, numbered without holes,
resumable with --since, and a follower that stops reading told exactly what it missed."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.daemon import (
    REPO,
    Daemon,
    child_command,
    running_daemon,
    start_watched_child,
)
from tests.helpers.wait import DEFAULT_TIMEOUT, wait_until


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    with running_daemon(tmp_path) as running:
        yield running


def events(daemon: Daemon, *args: str) -> list[dict[str, Any]]:
    result = daemon.watchctl("events", "--json", *args)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def wait_event(daemon: Daemon, what: str, **fields: Any) -> list[dict[str, Any]]:
    """Every event so far, once one with *fields* is among them."""

    def found() -> list[dict[str, Any]] | None:
        seen = events(daemon)
        matches = any(all(e.get(k) == v for k, v in fields.items()) for e in seen)
        return seen if matches else None

    result = wait_until(found, what)
    assert result is not None
    return result


def test_a_scripted_sequence_is_told_in_order_with_seq_increasing_by_one(
    daemon: Daemon, tmp_path: Path
) -> None:
    watched = start_watched_child(daemon, tmp_path)
    src, record = watched.src, watched.record
    (src / "app.py").write_text("v2")
    record.wait_starts(2)
    assert daemon.watchctl("stop", "web").returncode == 0
    daemon.jobs_dir.joinpath("jobs.yaml").write_text("jobs: {web: {command: [true], bad: 1}}\n")
    wait_event(daemon, "the refused edit", kind="config", ok=False)
    other = {"command": child_command(tmp_path / "other")}
    daemon.write_jobs("jobs.yaml", {"web": watched.definition, "other": other})
    seen = wait_event(daemon, "the accepted edit", kind="config", added=["other"])
    seen = wait_event(daemon, "the new job running", job="other", to="running")

    assert [event["seq"] for event in seen] == list(range(1, len(seen) + 1))
    told = [
        (e["kind"], e.get("from"), e.get("to"), e.get("reason")) for e in seen if e["job"] == "web"
    ]
    assert told == [
        ("state", "stopped", "starting", "config"),
        ("state", "starting", "running", "config"),
        ("change", None, None, None),
        ("state", "running", "stopping", "change"),
        ("state", "stopping", "starting", "change"),
        ("restart", None, None, "change"),
        ("state", "starting", "running", "change"),
        ("state", "running", "stopping", "manual"),
        ("state", "stopping", "stopped", "manual"),
    ]
    change = next(e for e in seen if e["kind"] == "change")
    assert change["paths"] == [str(src / "app.py")] and change["count"] == 1
    configs = [e for e in seen if e["kind"] == "config"]
    assert configs[0]["ok"] is True and configs[0]["added"] == ["web"]
    refused = next(e for e in configs if not e["ok"])
    assert "jobs.web.bad: unknown key" in refused["error"]
    assert configs[-1]["ok"] is True and configs[-1]["added"] == ["other"]
    assert configs.index(refused) < len(configs) - 1
    for event in seen:
        assert set(event) >= {"seq", "at", "job", "kind"}
        assert event["at"][10] == "T"

    middle = len(seen) // 2
    resumed = events(daemon, "--since", str(middle))
    assert resumed[: len(seen) - middle] == seen[middle:]
    assert [e["job"] for e in events(daemon, "other")] == ["other"] * 2
    table = daemon.watchctl("events", "web")
    assert table.returncode == 0
    assert "running -> stopping (change: " in table.stdout


def test_since_the_newest_seq_there_is_nothing_new(daemon: Daemon) -> None:
    daemon.start()
    (first,) = events(daemon)
    assert first["seq"] == 1 and first["kind"] == "config"
    assert events(daemon, "--since", "0") == [first]
    assert events(daemon, "--since", "1") == []


def test_unknown_job_exits_4(daemon: Daemon) -> None:
    daemon.start()
    result = daemon.watchctl("events", "ghost")
    assert result.returncode == 4 and "unknown job" in result.stderr


JOBS = 50


def test_a_stopped_follower_gets_a_gap_and_the_daemon_keeps_answering(
    daemon: Daemon, tmp_path: Path
) -> None:
    """50 jobs see a batch of changes; a follower that stops reading is not waited for,
    and when it reads again it is told exactly how many events it missed."""
    # Paths of 3,000 characters: each change event (20 of them) is about 60 KB.
    deep = tmp_path.joinpath(*[f"{level:02d}" + "d" * 240 for level in range(12)])
    deep.mkdir(parents=True)
    quiet = {"command": ["sleep", "600"], "on_change": "none", "watch": {"paths": [str(tmp_path)]}}
    daemon.write_jobs("jobs.yaml", {f"job{n:02d}": quiet for n in range(JOBS)})
    daemon.start()
    wait_until(lambda: daemon.watchctl("status").returncode == 0, "every job running")
    follower = subprocess.Popen(
        [sys.executable, "-m", "watchd.ctl", "-s", str(daemon.socket), "events", "-f", "--json"],
        stdout=subprocess.PIPE,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
    )
    assert follower.stdout is not None
    lines = Lines(follower)
    try:
        first = json.loads(lines.next())
        follower.send_signal(signal.SIGSTOP)
        for batch in range(2):  # 50 jobs, 60 KB each, twice: more than the history holds
            for n in range(20):
                (deep / f"{batch}{n:02d}").write_text("x")
            last = str(deep / f"{batch}19")
            wait_until(lambda: told_to_all(daemon, last), "the changes told")  # noqa: B023
        started = time.monotonic()
        status = daemon.watchctl("status")
        assert status.returncode == 0 and status.stdout.count("running") == JOBS
        assert time.monotonic() - started < DEFAULT_TIMEOUT
        newest = events(daemon, "-n", "1")[-1]["seq"]
        follower.send_signal(signal.SIGCONT)
        got = [first]
        while told_up_to(got) < newest:
            got.append(json.loads(lines.next()))
    finally:
        follower.send_signal(signal.SIGCONT)
        follower.terminate()
        follower.wait(30)
        follower.stdout.close()
    assert any(event["kind"] == "gap" for event in got), "fell 3 MB behind, told nothing"
    assert told_up_to(got) == newest
    replayed = events(daemon, "--since", "0")
    assert replayed[0]["kind"] == "gap", "the history dropped its oldest events, silently"
    assert told_up_to([{"kind": "state", "seq": 0}, *replayed]) >= newest


def told_to_all(daemon: Daemon, path: str) -> bool:
    """Every job has been told of a change of *path*."""
    told = {e["job"] for e in events(daemon, "-n", str(JOBS * 4)) if path in e.get("paths", ())}
    return len(told) == JOBS


def told_up_to(got: list[dict[str, Any]]) -> int:
    """The last seq the follower has seen or been told it missed; fails on a silent loss."""
    told = int(got[0]["seq"]) - 1
    for event in got:
        if event["kind"] == "gap":
            told += event["missed"]
        else:
            assert event["seq"] == told + 1, f"event {told + 1} lost without a gap"
            told = event["seq"]
    return told


class Lines:
    """A child's stdout, line by line, each within a timeout."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        self._fd = process.stdout.fileno()
        self._buffer = b""

    def next(self, timeout: float = DEFAULT_TIMEOUT) -> bytes:
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._fd], [], [], left)[0]:
                raise AssertionError(f"no line from watchctl within {timeout}s")
            chunk = os.read(self._fd, 65536)
            assert chunk, "watchctl ended"
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line

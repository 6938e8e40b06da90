"""Holds, releases and fallbacks to polling in ``watchctl events``, against a real daemon:
``watchctl hold``/``release``, a real ``git rebase`` in progress, and a tree outgrowing the
kernel's real inotify limit (at start and after it). Each is told once, in order, with the
numbers it concerns, and ``seq`` has no hole."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.daemon import Daemon, Record, child_command, running_daemon, start_watched_child
from tests.helpers.wait import wait_until
from tests.integration.test_developer_loop import GIT_ENV, make_repo, needs, ten_commits_on_a_branch
from tests.integration.test_events import wait_event
from tests.integration.test_watch_limit import IN_ITS_OWN_NAMESPACE, LIMIT, _why_not


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    with running_daemon(tmp_path) as running:
        yield running


def numbered_without_holes(seen: list[dict[str, Any]]) -> None:
    assert [event["seq"] for event in seen] == list(range(1, len(seen) + 1))


def of(seen: list[dict[str, Any]], *kinds: str) -> list[dict[str, Any]]:
    return [event for event in seen if event["kind"] in kinds and event["job"] == "web"]


def test_a_hold_and_its_release_are_told_with_the_changes_acted_on(
    daemon: Daemon, tmp_path: Path
) -> None:
    watched = start_watched_child(daemon, tmp_path)
    src, record = watched.src, watched.record
    assert daemon.watchctl("hold", "web").returncode == 0
    for number in range(5):
        (src / f"deploy{number}.py").write_text("x\n")
    wait_until(lambda: daemon.job("web")["held"], "the hold")
    metrics = daemon.watchctl("metrics").stdout
    wait_until(
        lambda: 'watchd_job_held_changes{job="web"} 5.0' in daemon.watchctl("metrics").stdout,
        "the five changes kept",
    )
    assert 'watchd_job_held{job="web"} 1.0' in metrics
    assert daemon.watchctl("release", "web").returncode == 0
    record.wait_starts(2)
    seen = wait_event(daemon, "the restart's new child", job="web", to="running", reason="change")

    numbered_without_holes(seen)
    told = of(seen, "hold", "release", "change", "restart")
    assert [(e["kind"], e.get("held_by"), e.get("count")) for e in told] == [
        ("hold", "watchctl", 0),
        ("release", "watchctl", 5),
        ("change", None, 5),
        ("restart", None, None),
    ]
    assert told[-1]["reason"] == "change"
    metrics = daemon.watchctl("metrics").stdout
    assert 'watchd_job_holds_total{by="watchctl",job="web"} 1.0' in metrics
    assert 'watchd_job_held{job="web"} 0.0' in metrics
    assert 'watchd_job_restarts_total{job="web",reason="change"} 1.0' in metrics
    table = daemon.watchctl("events", "web").stdout
    assert "held by watchctl; 0 changes kept" in table
    assert "watchctl no longer holds; acting on 5 changes" in table


@needs("git")
def test_a_git_rebase_in_progress_is_a_hold_and_its_end_one_release(
    daemon: Daemon, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    make_repo(repo)
    ten_commits_on_a_branch(repo)
    subprocess.run(["git", "checkout", "-q", "topic"], cwd=repo, check=True, timeout=60)
    record = Record(tmp_path / "web")
    web = {"command": child_command(record.path), "cwd": str(repo), "watch": {"paths": [str(repo)]}}
    daemon.write_jobs("jobs.yaml", {"web": web})
    daemon.start()
    record.wait_starts(1)
    go = tmp_path / "go"
    # A real rebase, paused in its first --exec step until the test lets it go on: its
    # rebase-merge/ directory exists throughout.
    rebase = subprocess.Popen(
        ["git", "rebase", "-q", "--exec", f"while [ ! -e {go} ]; do sleep 0.05; done", "main"],
        cwd=repo,
        env={**os.environ, **GIT_ENV},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        merge = str(repo / ".git" / "rebase-merge")
        wait_event(daemon, "the rebase's hold", job="web", kind="hold", held_by=merge)
        assert daemon.job("web")["held_by"] == merge
        assert len(record.starts()) == 1
        go.touch()
        assert rebase.wait(120) == 0
    finally:
        if rebase.poll() is None:
            go.touch()
            rebase.wait(120)
        assert rebase.stderr is not None
        rebase.stderr.close()
    record.wait_starts(2)
    seen = wait_event(daemon, "the restart's new child", job="web", to="running", reason="change")

    numbered_without_holes(seen)
    told = of(seen, "hold", "release", "change", "restart")
    kinds = [event["kind"] for event in told]
    # Held by index.lock first, maybe, and then by rebase-merge/: holds, one release, the
    # one batch of changes, one restart.
    assert kinds[-3:] == ["release", "change", "restart"] and set(kinds[:-3]) == {"hold"}, kinds
    locks = {str(repo / ".git" / name) for name in ("index.lock", "rebase-merge")}
    assert {event["held_by"] for event in told[:-2]} <= locks
    release, change = told[-3], told[-2]
    assert release["count"] == change["count"] >= 10, (release, change)
    assert daemon.job("web")["held_by"] is None
    metrics = daemon.watchctl("metrics").stdout
    assert 'watchd_job_holds_total{by="vcs",job="web"} ' in metrics
    assert 'watchd_job_holds_total{by="watchctl",job="web"} 0.0' in metrics


def test_a_job_past_the_watch_limit_falls_back_at_start_and_another_later(
    daemon: Daemon, tmp_path: Path
) -> None:
    why = _why_not()
    if why is not None:
        pytest.skip(why)
    big, tree = tmp_path / "big", tmp_path / "tree"
    for index in range(2 * LIMIT):
        (big / f"d{index:03d}").mkdir(parents=True)
    for index in range(5):
        (tree / f"d{index}").mkdir(parents=True)
    web, large = Record(tmp_path / "web"), Record(tmp_path / "large")
    daemon.write_jobs(
        "jobs.yaml",
        {
            "large": {"command": child_command(large.path), "watch": {"paths": [str(big)]}},
            "web": {"command": child_command(web.path), "watch": {"paths": [str(tree)]}},
        },
    )
    daemon.start(prefix=IN_ITS_OWN_NAMESPACE)
    web.wait_starts(1)
    reason = "inotify watch limit reached"
    backend = f"poll ({reason})"
    assert daemon.job("large")["backend"] == backend
    assert daemon.job("web")["backend"] == "inotify"
    for index in range(2 * LIMIT):
        (tree / "grown" / f"g{index:03d}").mkdir(parents=True)
    seen = wait_event(daemon, "the fallback after start", job="web", kind="fallback")

    numbered_without_holes(seen)
    fallbacks = [
        (e["job"], e["backend"], e["reason"], e["at_start"])
        for e in seen
        if e["kind"] == "fallback"
    ]
    assert fallbacks == [("large", backend, reason, True), ("web", backend, reason, False)]
    assert daemon.job("web")["backend"] == backend
    metrics = daemon.watchctl("metrics").stdout
    assert 'watchd_watch_fallbacks_total{job="web"} 1.0' in metrics
    assert 'watchd_watch_fallbacks_total{job="large"} 1.0' in metrics
    assert (
        "now poll (inotify watch limit reached) (while watching)"
        in daemon.watchctl("events", "web").stdout
    )


MAX_QUEUED = Path("/proc/sys/fs/inotify/max_queued_events")


def test_a_real_inotify_queue_overflow_is_an_event_and_counted(
    daemon: Daemon, tmp_path: Path
) -> None:
    """The daemon is stopped (SIGSTOP) while more files are made than the kernel queues
    for it: the kernel drops events and says so, and the job is told of it once."""
    queued = int(MAX_QUEUED.read_text())
    if queued > 100_000:
        pytest.skip(f"fs.inotify.max_queued_events is {queued}: too many files to overflow it")
    watched = start_watched_child(daemon, tmp_path)
    src, record = watched.src, watched.record
    assert daemon.process is not None
    daemon.process.send_signal(signal.SIGSTOP)
    try:
        for number in range(queued + 1000):
            os.close(os.open(src / f"f{number:05d}", os.O_WRONLY | os.O_CREAT, 0o644))
    finally:
        daemon.process.send_signal(signal.SIGCONT)
    seen = wait_event(daemon, "the overflow", job="web", kind="overflow")
    record.wait_starts(2)  # anything may have changed: the job acts on it

    numbered_without_holes(seen)
    (overflow,) = of(seen, "overflow")
    assert overflow["roots"] == [str(src)]
    metrics = daemon.watchctl("metrics").stdout
    assert 'watchd_inotify_overflows_total{job="web"} 1.0' in metrics

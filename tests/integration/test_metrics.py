"""Metrics from a real daemon: ``watchctl metrics`` and ``GET /metrics`` over real HTTP,
counters that move by exactly one per restart, and promtool's approval where it is."""

from __future__ import annotations

import http.client
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers.daemon import Daemon, Record, child_command, running_daemon, start_watched_child
from tests.helpers.wait import wait_until


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    with running_daemon(tmp_path, {"metrics": {"listen": "127.0.0.1:0"}}) as running:
        yield running


def port(daemon: Daemon) -> int:
    daemon.wait_log("metrics at http://")
    found = re.search(r"metrics at http://127\.0\.0\.1:(\d+)/metrics", daemon.log())
    assert found, daemon.log()
    return int(found[1])


def get(port: int, path: str = "/metrics", method: str = "GET") -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request(method, path)
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


def scrape(port: int) -> str:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", "/metrics")
        response = connection.getresponse()
        assert response.status == 200
        assert response.getheader("Content-Type", "").startswith("text/plain; version=0.0.4")
        return response.read().decode()
    finally:
        connection.close()


def series(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def restarts(text: str, reason: str) -> float:
    return series(text)[("watchd_job_restarts_total", (("job", "web"), ("reason", reason)))]


def test_http_and_watchctl_serve_the_same_families_and_counters_move_by_one(
    daemon: Daemon, tmp_path: Path
) -> None:
    watched = start_watched_child(daemon, tmp_path)
    src, record = watched.src, watched.record
    where = port(daemon)
    before = scrape(where)
    assert restarts(before, "manual") == 0 and restarts(before, "change") == 0
    assert series(before)[("watchd_job_up", (("job", "web"),))] == 1
    assert series(before)[("watchd_watched_paths", (("backend", "inotify"), ("job", "web")))] == 1

    assert daemon.watchctl("restart", "web").returncode == 0
    record.wait_starts(2)  # a child killed before it ran its first line records nothing
    (src / "app.py").write_text("v2")
    record.wait_starts(3)
    wait_until(lambda: restarts(scrape(where), "change") == 1, "the change restart counted")
    after = scrape(where)
    assert restarts(after, "manual") == 1
    assert restarts(after, "change") == 1
    assert restarts(after, "exit") == 0
    histogram = series(after)
    assert histogram[("watchd_change_to_restart_seconds_count", ())] == 1
    assert 0 < histogram[("watchd_change_to_restart_seconds_sum", ())] < 20

    printed = daemon.watchctl("metrics")
    assert printed.returncode == 0, printed.stderr
    told = series(printed.stdout)
    assert {key[0] for key in told} == {key[0] for key in series(after)}
    assert told[("watchd_job_restarts_total", (("job", "web"), ("reason", "change")))] == 1


def test_only_get_and_head_of_metrics_are_served(daemon: Daemon) -> None:
    daemon.start()
    where = port(daemon)
    assert get(where, "/").status == 404
    assert get(where, "/metrics", "POST").status == 405
    head = get(where, "/metrics", "HEAD")
    assert head.status == 200 and int(head.getheader("Content-Length", "0")) > 0
    assert "watchd_info" in scrape(where)


def test_a_port_in_use_is_an_error_in_the_log_and_the_jobs_still_run(tmp_path: Path) -> None:
    (tmp_path / "first").mkdir()
    with running_daemon(tmp_path / "first", {"metrics": {"listen": "127.0.0.1:0"}}) as first:
        first.start()
        taken = port(first)
        second_dir = tmp_path / "second"
        second_dir.mkdir()
        with running_daemon(second_dir, {"metrics": {"listen": f"127.0.0.1:{taken}"}}) as second:
            record = Record(tmp_path / "job")
            second.write_jobs("jobs.yaml", {"job": {"command": child_command(record.path)}})
            second.start()
            record.wait_starts(1)
            assert f"cannot serve metrics at 127.0.0.1:{taken}" in second.log()


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_promtool_accepts_the_exposition(daemon: Daemon, tmp_path: Path) -> None:
    daemon.write_jobs("jobs.yaml", {"web": {"command": child_command(tmp_path / "web")}})
    daemon.start()
    text = scrape(port(daemon))
    checked = subprocess.run(
        ["promtool", "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr

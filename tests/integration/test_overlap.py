"""Overlap restarts, end to end: the new child starts on the held sockets beside the old
one, gets ready, and only then is the old one stopped; a new child that fails to get ready
leaves the old one serving. Real sockets, a real load client."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.helpers.daemon import Record, running_daemon
from tests.helpers.load import Load, get
from tests.helpers.wait import wait_until
from tests.integration.test_gunicorn import gunicorn_job, wait_for_every_worker, write_app
from tests.integration.test_sockets import (
    RESTARTS,
    port_of,
    restart_under_load,
    server_job,
    serving,
    wait_serving,
)

GUNICORN_RESTARTS = 5


def overlap_job(record: Record, tmp_path: Path, *options: str, **settings: Any) -> dict[str, Any]:
    return server_job(
        record,
        tmp_path / "src",
        "--notify",
        "--delay",
        "0.3",
        *options,
        ready="notify",
        restart_mode="overlap",
        sockets=[{"tcp": "127.0.0.1:0", "name": "http"}],
        **settings,
    )


def at(record: Record, kind: str, pid: int) -> int | None:
    """When child *pid* recorded *kind* (monotonic ns), if it did."""
    rows = [row for row in record.events(kind) if int(row[1]) == pid]
    assert len(rows) <= 1, rows
    return int(rows[0][-1]) if rows else None


def test_overlap_starts_the_new_child_first_and_stops_the_old_once_it_is_ready(
    tmp_path: Path,
) -> None:
    record = Record(tmp_path / "record")
    with running_daemon(tmp_path) as daemon:
        daemon.write_jobs("web.yaml", {"web": overlap_job(record, tmp_path)})
        daemon.start()
        (old,) = wait_serving(record, 1)
        (tmp_path / "src" / "app.py").write_text("v2")
        new = wait_serving(record, 2)[-1]
        wait_until(lambda: daemon.job("web")["pid"] == new, "the new child to take over")
        wait_until(lambda: record.events("exit"), "the old child to finish")
        # Order: new start < new ready (serving, then READY=1) < old asked to stop.
        stopped = at(record, "signal", old)
        assert stopped is not None
        assert (at(record, "start", new) or stopped) < stopped
        assert (at(record, "serving", new) or stopped) < stopped
        assert [int(row[1]) for row in record.events("exit")] == [old]
        job = daemon.job("web")
        assert (job["state"], job["ready"], job["restarts"]) == ("running", True, 1)
        assert job["last_trigger"]["kind"] == "change"
        assert get("127.0.0.1", port_of(daemon, "web"), 10) == str(new)
        daemon.wait_log(f"stopping the old child, pid {old}")


def test_overlap_restarts_refuse_no_connection_under_load(tmp_path: Path) -> None:
    record = Record(tmp_path / "record")
    with running_daemon(tmp_path) as daemon:
        daemon.write_jobs("web.yaml", {"web": overlap_job(record, tmp_path)})
        daemon.start()
        wait_serving(record, 1)
        load = restart_under_load(daemon, record, tmp_path / "src", port_of(daemon, "web"))
        assert load.failures == 0, load.first_errors
        assert len(load.served_by) >= RESTARTS // 2
        wait_until(lambda: len(record.events("exit")) >= RESTARTS, "every old child to go")


def test_a_new_child_that_fails_leaves_the_old_one_serving(tmp_path: Path) -> None:
    record = Record(tmp_path / "record")
    broken = tmp_path / "broken"
    job = overlap_job(record, tmp_path, "--fail-if", str(broken))
    with running_daemon(tmp_path) as daemon:
        daemon.write_jobs("web.yaml", {"web": job})
        daemon.start()
        (old,) = wait_serving(record, 1)
        broken.touch()
        (tmp_path / "src" / "app.py").write_text("v2")
        daemon.wait_log("restart failed: the new child ended (exit status 1) before it was ready")
        job_status = daemon.job("web")
        assert (job_status["state"], job_status["pid"]) == ("running", old)
        trigger = job_status["last_trigger"]
        assert trigger["kind"] == "exit"
        assert trigger["detail"] == (
            f"restart failed: the new child ended (exit status 1) before it was ready; "
            f"pid {old} keeps running"
        )
        assert get("127.0.0.1", port_of(daemon, "web"), 10) == str(old)
        # watchctl restart says so, and exits non-zero.
        result = daemon.watchctl("restart", "web")
        assert result.returncode == 1
        assert f"pid {old} keeps running" in result.stderr
        # The fix: the next change replaces the old child.
        broken.unlink()
        (tmp_path / "src" / "app.py").write_text("v3")
        wait_until(lambda: len(serving(record)) == 2, "the fixed child to serve")
        wait_until(lambda: daemon.job("web")["pid"] == serving(record)[-1], "the hand-over")


def test_a_new_child_not_ready_in_time_is_dropped_and_the_old_one_serves(tmp_path: Path) -> None:
    record = Record(tmp_path / "record")
    gate = tmp_path / "gate"
    gate.touch()
    # Long enough for a new Python child to start even on a loaded machine.
    job = overlap_job(record, tmp_path, "--gate", str(gate), ready_timeout="4s")
    with running_daemon(tmp_path) as daemon:
        daemon.write_jobs("web.yaml", {"web": job})
        daemon.start()
        (old,) = wait_serving(record, 1)
        gate.unlink()
        (tmp_path / "src" / "app.py").write_text("v2")
        new = record.wait_starts(2)[-1]
        daemon.wait_log("restart failed: the new child was not ready within 4s")
        wait_until(lambda: at(record, "exit", new), "the new child to be stopped")
        job_status = daemon.job("web")
        assert (job_status["state"], job_status["pid"]) == ("running", old)
        assert job_status["last_trigger"]["kind"] == "ready-timeout"
        assert get("127.0.0.1", port_of(daemon, "web"), 10) == str(old)


def test_gunicorn_unmodified_gets_ready_by_notify_and_overlaps_without_a_failure(
    tmp_path: Path,
) -> None:
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    write_app(app_dir, 0)
    job = gunicorn_job(
        app_dir,
        sockets=[{"tcp": "127.0.0.1:0", "name": "http"}],
        ready="notify",
        restart_mode="overlap",
    )
    with running_daemon(tmp_path) as daemon:
        daemon.write_jobs("web.yaml", {"web": job})
        daemon.start()  # watchd is ready once gunicorn said READY=1
        status = daemon.job("web")
        assert (status["state"], status["ready"]) == ("running", True)
        assert status["status_text"] == "Gunicorn arbiter booted"
        masters = [status["pid"]]
        port = port_of(daemon, "web")
        with Load(port, clients=4) as load:
            wait_for_every_worker(load, masters[0])
            for version in range(1, GUNICORN_RESTARTS + 1):
                write_app(app_dir, version)
                masters.append(
                    wait_until(
                        lambda: (pid := daemon.job("web")["pid"]) != masters[-1] and pid,
                        "the new master to take over",
                    )
                )
                wait_for_every_worker(load, masters[-1])
        assert load.failures == 0, load.first_errors
        assert daemon.job("web")["restarts"] == GUNICORN_RESTARTS
        assert f"stopping the old child, pid {masters[-2]}" in daemon.log()

"""Health checks and the child watchdog, end to end: a real server that turns unhealthy
(answers 500) or stops pinging WATCHDOG=1 when a test says so, and is restarted for it."""

from __future__ import annotations

from pathlib import Path

from tests.helpers.daemon import Record, running_daemon
from tests.helpers.wait import wait_until
from tests.integration.test_readiness import environment_of
from tests.integration.test_sockets import free_port, server_job, wait_serving


def test_a_job_failing_its_health_check_retries_times_is_restarted(tmp_path: Path) -> None:
    record = Record(tmp_path / "record")
    port = free_port()
    sick = tmp_path / "sick"
    job = server_job(record, tmp_path / "src", "--port", str(port), "--unhealthy-if", str(sick))
    job["ready"] = {"http": f"http://127.0.0.1:{port}/"}  # checked once it serves
    job["health"] = {
        "http": f"http://127.0.0.1:{port}/health",
        "interval": "200ms",
        "timeout": "2s",
        "retries": 3,
    }
    with running_daemon(tmp_path) as daemon:
        daemon.write_jobs("web.yaml", {"web": job})
        daemon.start()
        (first,) = wait_serving(record, 1)
        wait_until(lambda: (daemon.job("web")["health"] or {}).get("ok"), "a passing check")
        assert daemon.job("web")["health"]["failures"] == 0
        sick.touch()
        daemon.wait_log("web: health check failed (1 of 3)")
        daemon.wait_log("web: health check failed (3 of 3)")
        daemon.wait_log("web: health check failed: HTTP 500")
        sick.unlink()  # the next child is healthy (and ready) again
        second = wait_serving(record, 2)[-1]
        assert second != first
        # Restarted with backoff, the trigger says why; the new child is checked afresh.
        assert "web: restarting in" in daemon.log()
        wait_until(lambda: daemon.job("web")["pid"] == second, "the new child to run")
        trigger = daemon.job("web")["last_trigger"]
        assert trigger["kind"] == "health"
        assert (
            trigger["detail"] == "health check failed: HTTP 500 Internal Server Error (3 in a row)"
        )
        wait_until(lambda: (daemon.job("web")["health"] or {}).get("ok"), "the new child passes")


def test_a_child_whose_watchdog_pings_stop_is_restarted(tmp_path: Path) -> None:
    record = Record(tmp_path / "record")
    hung = tmp_path / "hung"
    job = server_job(
        record,
        tmp_path / "src",
        "--notify",
        "--ping-until",
        str(hung),
        ready="notify",
        watchdog="3s",  # pinged every 1.5s: a loaded machine may delay one a little
        sockets=[{"tcp": "127.0.0.1:0"}],
    )
    with running_daemon(tmp_path) as daemon:
        daemon.write_jobs("web.yaml", {"web": job})
        daemon.start()
        (first,) = wait_serving(record, 1)
        env = environment_of(first)
        assert (env["WATCHDOG_USEC"], env["WATCHDOG_PID"]) == ("3000000", str(first))
        # Pinging at half the interval keeps it running well past the interval.
        wait_until(lambda: (daemon.job("web")["uptime"] or 0) > 7, "two intervals of pings", 30)
        assert daemon.job("web")["pid"] == first
        assert "WATCHDOG=1" not in daemon.log()
        hung.touch()  # this child stops pinging; the next one too: it stays failing
        daemon.wait_log("web: no WATCHDOG=1 within 3s; restarting it")
        wait_serving(record, 2)
        assert [int(row[1]) for row in record.events("signal")][:1] == [first]
        trigger = daemon.job("web")["last_trigger"]
        assert trigger is not None
        assert (trigger["kind"], trigger["detail"]) == ("watchdog", "no WATCHDOG=1 within 3s")

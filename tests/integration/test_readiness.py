"""Readiness, end to end: a real daemon, a real server that gets ready when a test says so
(a gate file), readiness by READY=1 on the job's own NOTIFY_SOCKET, or by a tcp, http or
exec probe; ready_timeout; watchctl start waiting for it."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.daemon import REPO, Daemon, Record, running_daemon
from tests.helpers.wait import wait_until
from tests.integration.test_sockets import free_port, server_job, serving, wait_serving


def notify_job(record: Record, tmp_path: Path, *options: str, **settings: Any) -> dict[str, Any]:
    return server_job(
        record,
        tmp_path / "src",
        "--notify",
        "--status",
        "serving 1 request at a time",
        "--gate",
        str(tmp_path / "gate"),
        *options,
        ready="notify",
        sockets=[{"tcp": "127.0.0.1:0"}],
        **settings,
    )


def environment_of(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {key.decode(): value.decode() for key, value in pairs}


def send_notify(address: str, message: str) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.sendto(message.encode(), "\0" + address[1:] if address.startswith("@") else address)


def started(record: Record, count: int = 1) -> int:
    return record.wait_starts(count)[-1]


def test_a_notify_job_is_starting_until_ready_and_watchd_waits_for_it(tmp_path: Path) -> None:
    record = Record(tmp_path / "record")
    with running_daemon(tmp_path) as daemon:
        daemon.write_jobs("web.yaml", {"web": notify_job(record, tmp_path)})
        daemon.start(wait_ready=False)
        pid = started(record)
        job = daemon.job("web")
        assert (job["state"], job["pid"], job["ready"]) == ("starting", pid, False)
        # The child has a socket of its own, never watchd's; and watchd is not ready yet.
        address = environment_of(pid)["NOTIFY_SOCKET"]
        assert address.startswith("@watchd/")
        assert "ready:" not in daemon.log()
        (tmp_path / "gate").touch()
        daemon.wait_log("ready:")
        assert "1 job running" in daemon.log()
        job = daemon.job("web")
        assert (job["state"], job["ready"]) == ("running", True)
        assert job["status_text"] == "serving 1 request at a time"
        table = daemon.watchctl("status").stdout
        assert "serving 1 request at a time" in table
        assert "web: ready after" in daemon.log()


def test_a_ready_message_from_outside_the_job_is_ignored_and_logged(tmp_path: Path) -> None:
    record = Record(tmp_path / "record")
    with running_daemon(tmp_path) as daemon:
        daemon.write_jobs("web.yaml", {"web": notify_job(record, tmp_path)})
        daemon.start(wait_ready=False)
        pid = started(record)
        send_notify(environment_of(pid)["NOTIFY_SOCKET"], "READY=1\nSTATUS=forged")
        daemon.wait_log("ignored a notify message from pid")
        job = daemon.job("web")
        assert (job["state"], job["ready"], job["status_text"]) == ("starting", False, None)
        (tmp_path / "gate").touch()
        wait_until(lambda: daemon.job("web")["ready"], "the job's own READY=1")
        assert daemon.job("web")["status_text"] == "serving 1 request at a time"


def test_a_job_not_ready_within_ready_timeout_is_a_failed_start(tmp_path: Path) -> None:
    record = Record(tmp_path / "record")
    # Long enough for a Python child to start even on a loaded machine.
    job = notify_job(record, tmp_path, ready_timeout="3s", backoff_initial="1h")
    with running_daemon(tmp_path) as daemon:
        daemon.write_jobs("web.yaml", {"web": job})
        daemon.start()  # watchd's own readiness is bounded: the failure ends the wait
        assert daemon.job("web")["state"] == "backoff"
        daemon.wait_log("web: not ready within 3s; stopping it: a failed start")
        trigger = daemon.job("web")["last_trigger"]
        assert (trigger["kind"], trigger["detail"]) == ("ready-timeout", "not ready within 3s")
        assert record.events("signal")  # the child was stopped, not left behind
        # watchctl restart waits for the verdict and says what went wrong.
        result = daemon.watchctl("restart", "web")
        assert result.returncode == 1
        assert "web: backoff (not ready within 3s)" in result.stderr
        assert len(record.events("signal")) == 2


def _probe(kind: str, port: int, gate: Path) -> dict[str, Any]:
    if kind == "tcp":
        return {"tcp": f"127.0.0.1:{port}"}
    if kind == "http":
        return {"http": f"http://127.0.0.1:{port}/health"}
    return {"exec": [sys.executable, "-c", f"import os; os.stat({str(gate)!r})"]}


@pytest.mark.parametrize("kind", ["tcp", "http", "exec"])
def test_a_probe_makes_the_job_ready_when_it_passes(tmp_path: Path, kind: str) -> None:
    record = Record(tmp_path / "record")
    port = free_port()
    gate = tmp_path / "gate"
    job = server_job(record, tmp_path / "src", "--port", str(port), "--gate", str(gate)) | {
        "ready": _probe(kind, port, gate)
    }
    with running_daemon(tmp_path) as daemon:
        daemon.write_jobs("web.yaml", {"web": job})
        daemon.start(wait_ready=False)
        started(record)
        assert daemon.job("web")["state"] == "starting"
        gate.touch()
        daemon.wait_log("ready:")
        status = daemon.job("web")
        assert (status["state"], status["ready"]) == ("running", True)
        assert "web: ready after" in daemon.log()
        assert serving(record)


def test_watchctl_start_returns_once_the_job_is_ready(tmp_path: Path) -> None:
    record = Record(tmp_path / "record")
    gate = tmp_path / "gate"
    gate.touch()
    with running_daemon(tmp_path) as daemon:
        daemon.write_jobs("web.yaml", {"web": notify_job(record, tmp_path)})
        daemon.start()
        wait_serving(record, 1)
        assert daemon.watchctl("stop", "web").returncode == 0
        gate.unlink()
        start = watchctl_in_background(daemon, "start", "web")
        try:
            started(record, 2)
            assert start.poll() is None, "watchctl start returned before the job was ready"
            assert daemon.job("web")["state"] == "starting"
            gate.touch()
            _, err = start.communicate(timeout=60)
        finally:
            if start.poll() is None:
                start.kill()
                start.wait()
        assert start.returncode == 0, err
        assert daemon.job("web")["state"] == "running"
        assert len(serving(record)) == 2


def watchctl_in_background(daemon: Daemon, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "watchd.ctl", "--socket", str(daemon.socket), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )

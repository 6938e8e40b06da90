"""gunicorn, unmodified, on a socket watchd holds: it finds the socket through its own
systemd socket-activation support (LISTEN_FDS, LISTEN_PID) and a real load client sees no
failed request across file-triggered restarts."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from tests.helpers.daemon import Daemon, running_daemon
from tests.helpers.load import Load, get
from tests.helpers.wait import wait_until

RESTARTS = 8
WORKERS = 2
# gunicorn's master and workers each import it: on a loaded 2-core machine that is slow.
BOOT_TIMEOUT = 90.0

# Every answer names the gunicorn master that serves it (the worker's parent: the PID
# watchd sees as the job's child), then the worker.
APP = """\
import os

VERSION = {version}


def application(environ, start_response):
    body = f"{{os.getppid()}} {{os.getpid()}}".encode()
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]
"""


def gunicorn_job(app_dir: Path, **settings: Any) -> dict[str, Any]:
    return {
        "command": [
            sys.executable,
            "-m",
            "gunicorn",
            "--workers",
            str(WORKERS),
            "--no-control-socket",  # its default path is shared by every gunicorn of a user
            "--graceful-timeout",
            "10",
            "app:application",
        ],
        "cwd": str(app_dir),
        "env": {"PYTHONDONTWRITEBYTECODE": "1"},
        "watch": {"paths": [str(app_dir)], "include": ["*.py"]},
        "debounce": "20ms",
        "stop_timeout": "15s",
        "kill_mode": "mixed",  # as gunicorn's own systemd unit: its master stops its workers
        **settings,
    }


def write_app(app_dir: Path, version: int) -> None:
    (app_dir / "app.py").write_text(APP.format(version=version))


def job_pid(daemon: Daemon) -> int | None:
    job = daemon.job("web")
    pid: int | None = job["pid"] if job["state"] == "running" else None
    return pid


def masters_of(load: Load) -> set[str]:
    return {body.split()[0] for body in load.bodies()}


def wait_for_every_worker(load: Load, master: int | None) -> None:
    """Wait until each of *master*'s workers has answered. gunicorn loses a SIGTERM that
    reaches a worker still booting (it comes before the worker's own handler is set): that
    worker serves on until the master's graceful timeout kills it, mid-request. So the
    next save waits until every worker serves."""

    def workers() -> set[str]:
        answers = (body.split() for body in load.bodies())
        return {worker for parent, worker in answers if parent == str(master)}

    wait_until(lambda: len(workers()) == WORKERS, "an answer from every worker", BOOT_TIMEOUT)


def save_each_version(daemon: Daemon, app_dir: Path, load: Load, masters: list[int | None]) -> None:
    """Save RESTARTS new versions; after each, wait for a new master and for an answer
    from each of its workers before the next save. Appends each new master to *masters*."""
    for version in range(1, RESTARTS + 1):
        write_app(app_dir, version)
        masters.append(
            wait_until(
                lambda: (pid := job_pid(daemon)) not in (None, masters[-1]) and pid,
                "a new gunicorn master",
                BOOT_TIMEOUT,
            )
        )
        wait_for_every_worker(load, masters[-1])


def test_gunicorn_on_a_held_socket_fails_no_request_across_restarts(tmp_path: Path) -> None:
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    write_app(app_dir, 0)
    job = gunicorn_job(app_dir, sockets=[{"tcp": "127.0.0.1:0", "name": "http"}])
    with running_daemon(tmp_path) as daemon:
        daemon.write_jobs("web.yaml", {"web": job})
        daemon.start()
        first = wait_until(lambda: job_pid(daemon), "gunicorn to run", BOOT_TIMEOUT)
        port = int(daemon.job("web")["sockets"][0].rsplit(":", 1)[1])
        # gunicorn answers on watchd's socket: it bound nothing of its own.
        answer = wait_until(lambda: _answer(port), "a first answer", BOOT_TIMEOUT)
        assert answer is not None and answer.split()[0] == str(first)
        masters = [first]
        with Load(port, clients=4) as load:
            wait_for_every_worker(load, first)
            save_each_version(daemon, app_dir, load, masters)
        assert load.failures == 0, load.first_errors
        assert {str(pid) for pid in masters} <= masters_of(load)
        assert daemon.job("web")["restarts"] >= RESTARTS


def _answer(port: int) -> str | None:
    try:
        return get("127.0.0.1", port, 5)
    except OSError:
        return None


def test_gunicorn_under_ready_notify_and_overlap_fails_no_request(tmp_path: Path) -> None:
    """gunicorn's own READY=1 (sent by its arbiter through NOTIFY_SOCKET) makes the job
    ready; with overlap, each new master serves before the old one is stopped."""
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
        daemon.start()
        first = wait_until(lambda: job_pid(daemon), "gunicorn to run", BOOT_TIMEOUT)
        status = daemon.job("web")
        assert (status["ready"], status["status_text"]) == (True, "Gunicorn arbiter booted")
        port = int(status["sockets"][0].rsplit(":", 1)[1])
        masters = [first]
        with Load(port, clients=4) as load:
            wait_for_every_worker(load, first)
            save_each_version(daemon, app_dir, load, masters)
        assert load.failures == 0, load.first_errors
        assert daemon.job("web")["ready"] is True

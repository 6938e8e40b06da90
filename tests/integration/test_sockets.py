"""Held sockets, end to end: a real daemon, a real HTTP server that takes its socket from
LISTEN_FDS and is slow to start, a real load client across file-triggered restarts."""

from __future__ import annotations

import socket
import sys
from pathlib import Path
from typing import Any

from tests.helpers.daemon import REPO, Daemon, Record, running_daemon
from tests.helpers.load import Load, get
from tests.helpers.wait import wait_until

SERVER = str(REPO / "tests" / "helpers" / "listen_server.py")
RESTARTS = 20


def server_job(record: Record, watched: Path, *options: str, **settings: Any) -> dict[str, Any]:
    watched.mkdir(exist_ok=True)
    return {
        "command": [sys.executable, SERVER, str(record.path), *options],
        "watch": {"paths": [str(watched)]},
        "debounce": "20ms",
        "stop_timeout": "5s",
        **settings,
    }


def serving(record: Record) -> list[int]:
    return [int(row[1]) for row in record.events("serving")]


def wait_serving(record: Record, count: int) -> list[int]:
    wait_until(lambda: len(serving(record)) >= count, f"{count} children serving")
    return serving(record)


def port_of(daemon: Daemon, name: str) -> int:
    address: str = daemon.job(name)["sockets"][0]
    return int(address.rsplit(":", 1)[1])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def restart_under_load(daemon: Daemon, record: Record, watched: Path, port: int) -> Load:
    with Load(port) as load:
        wait_until(lambda: load.ok > 0, "a first answer")
        for restart in range(RESTARTS):
            (watched / "app.py").write_text(f"version {restart}")
            wait_serving(record, restart + 2)
        ok = load.ok
        wait_until(lambda: load.ok > ok, "an answer from the last child")
    return load


def test_held_sockets_refuse_no_connection_across_restarts(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    record = Record(tmp_path / "record")
    job = server_job(
        record, src, "--delay", "0.3", sockets=[{"tcp": "127.0.0.1:0", "name": "http"}]
    )
    with running_daemon(tmp_path) as daemon:
        daemon.write_jobs("web.yaml", {"web": job})
        daemon.start()
        wait_serving(record, 1)
        port = port_of(daemon, "web")
        load = restart_under_load(daemon, record, src, port)
        assert load.failures == 0, load.first_errors
        assert load.ok > RESTARTS
        assert len(load.served_by) >= RESTARTS // 2  # the answers came from many children
        # Each child had its socket as fd 3, named, with LISTEN_PID its own PID.
        starts = record.events("start")
        assert len(starts) == RESTARTS + 1
        for _, pid, listen_pid, listen_fds, names, _ns in starts:
            assert (listen_pid, listen_fds, names) == (pid, "1", "http")
        # The socket outlives every child: it is still watchd's, the same port.
        assert port_of(daemon, "web") == port
        assert get("127.0.0.1", port, 10) == str(serving(record)[-1])


def test_without_held_sockets_clients_are_refused_during_restarts(tmp_path: Path) -> None:
    """The negative control: the same server binding its own port, the same restarts; the
    client sees the downtime that held sockets remove."""
    src = tmp_path / "src"
    src.mkdir()
    record = Record(tmp_path / "record")
    port = free_port()
    job = server_job(record, src, "--delay", "0.3", "--port", str(port))
    with running_daemon(tmp_path) as daemon:
        daemon.write_jobs("web.yaml", {"web": job})
        daemon.start()
        wait_serving(record, 1)
        load = restart_under_load(daemon, record, src, port)
        assert load.failures > 0
        assert load.errors["ConnectionRefusedError"] > 0
        starts = record.events("start")
        assert all(row[2:5] == ["-", "-", "-"] for row in starts)  # nothing was passed


def test_a_socket_that_cannot_be_bound_fails_only_its_job(tmp_path: Path) -> None:
    record = Record(tmp_path / "record")
    other = Record(tmp_path / "other")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        jobs = {
            "web": server_job(record, tmp_path / "src", sockets=[{"tcp": f"127.0.0.1:{port}"}]),
            "other": server_job(other, tmp_path / "src", sockets=[{"tcp": "127.0.0.1:0"}]),
        }
        jobs["web"]["start_limit_burst"] = 1
        with running_daemon(tmp_path) as daemon:
            daemon.write_jobs("web.yaml", jobs)
            daemon.start()
            wait_until(lambda: daemon.job("web")["state"] == "failed", "web to fail")
            trigger = daemon.job("web")["last_trigger"]
            assert trigger["detail"] == (
                f"failed to start: cannot bind 127.0.0.1:{port}: Address already in use"
            )
            assert record.events() == []
            wait_serving(other, 1)
            assert daemon.job("other")["state"] == "running"


def test_unix_sockets_get_their_mode_and_go_when_the_job_does(tmp_path: Path) -> None:
    record = Record(tmp_path / "record")
    path = tmp_path / "run" / "app.sock"
    job = server_job(
        record, tmp_path / "src", sockets=[{"unix": str(path), "mode": "0600", "name": "app"}]
    )
    with running_daemon(tmp_path) as daemon:
        daemon.write_jobs("web.yaml", {"web": job})
        daemon.start()
        wait_serving(record, 1)
        assert path.is_socket()
        assert path.stat().st_mode & 0o777 == 0o600
        with socket.socket(socket.AF_UNIX) as client:
            client.connect(str(path))
            client.sendall(b"GET / HTTP/1.0\r\n\r\n")
            assert client.recv(100).startswith(b"HTTP/1.0 200")
        (daemon.jobs_dir / "web.yaml").unlink()
        wait_until(lambda: not path.exists(), "the socket file to go with its job")

"""``run_with_reloader(…, sockets=[…])`` and ``watchd-reload --socket``: the parent binds
once and every child serves the same socket, so a real load client sees no failed request
across reloads."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.helpers.load import Load
from tests.helpers.wait import wait_until
from tests.integration.test_sockets import free_port
from tests.reloader.harness import REPO, Program, write_module

RELOADS = 6
CLIENTS = 4

# Serves HTTP on the socket the parent passed (fd 3), answering with its PID; records
# ``serving <pid> <port> <LISTEN_PID> <LISTEN_FDS> <LISTEN_FDNAMES>`` once it accepts.
SERVER = """\
import os
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

from watchd.reloader import inherited_sockets, run_with_reloader

import mod


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = str(os.getpid()).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def main():
    env = dict(os.environ)
    if OWN_PORT:  # the negative control: a server that binds its port itself each time
        server = HTTPServer(("127.0.0.1", OWN_PORT), Handler)
        sock = server.socket
    else:
        (sock,) = inherited_sockets()
        server = HTTPServer(sock.getsockname(), Handler, bind_and_activate=False)
        server.socket = sock
    with open(os.environ["RECORD"], "a") as out:
        port = sock.getsockname()[1]
        names = ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES")
        words = [os.getpid(), port, *(env.get(name, "-") for name in names)]
        out.write(" ".join(["serving", *map(str, words), str(mod.VERSION)]) + "\\n")
    server.serve_forever()


OWN_PORT = int(sys.argv[1].removeprefix("own:")) if sys.argv[1].startswith("own:") else 0

if __name__ == "__main__":
    run_with_reloader(main, sockets=[] if OWN_PORT else [sys.argv[1]], debounce=0.02)
"""


def serving(program: Program) -> list[list[str]]:
    return program.rows("serving")


def wait_serving(program: Program, count: int) -> list[list[str]]:
    def enough() -> bool:
        program.check_running()
        return len(serving(program)) >= count

    program.wait(enough, f"{count} children serving")
    return serving(program)


def reload_under_load(program: Program, edited: Path, port: int) -> Load:
    with Load(port, clients=CLIENTS) as load:
        wait_until(lambda: load.ok > 0, "a first answer")
        for version in range(2, RELOADS + 2):
            write_module(edited, f"VERSION = {version}\n")
            pid = wait_serving(program, version)[-1][0]
            wait_until(lambda: load.served_by[pid] > 0, "an answer from the new child")  # noqa: B023
    return load


def test_a_reloading_program_keeps_its_socket_and_refuses_no_connection(
    tmp_path: Path, programs: list[Program]
) -> None:
    (tmp_path / "server.py").write_text(SERVER)
    write_module(tmp_path / "mod.py", "VERSION = 1\n")
    program = Program(tmp_path, [sys.executable, "server.py", "127.0.0.1:0"])
    programs.append(program)
    port = int(wait_serving(program, 1)[0][1])
    load = reload_under_load(program, tmp_path / "mod.py", port)
    # Connections made while one child exits and the next starts wait in the backlog of the
    # parent's socket. (A request the old child was answering when it exited is cut, as
    # with any reloader that ends its child at once, and shows as a reset.)
    assert load.errors["ConnectionRefusedError"] == 0, load.errors
    assert load.failures <= RELOADS * CLIENTS, load.errors
    rows = serving(program)
    assert len(rows) == RELOADS + 1
    for pid, row_port, listen_pid, listen_fds, names, _version in rows:
        # One socket, the parent's, as fd 3 of each child, which sd_listen_fds accepts.
        assert (row_port, listen_pid, listen_fds, names) == (str(port), pid, "1", "server")
    assert {row[0] for row in rows} <= set(load.served_by)


def test_without_sockets_clients_are_refused_during_reloads(
    tmp_path: Path, programs: list[Program]
) -> None:
    """The negative control: the same server binding its own port sees refusals."""
    (tmp_path / "server.py").write_text(SERVER)
    write_module(tmp_path / "mod.py", "VERSION = 1\n")
    port = free_port()
    program = Program(tmp_path, [sys.executable, "server.py", f"own:{port}"])
    programs.append(program)
    wait_serving(program, 1)
    load = reload_under_load(program, tmp_path / "mod.py", port)
    assert load.errors["ConnectionRefusedError"] > 0, load.errors
    assert all(row[2:5] == ["-", "-", "-"] for row in serving(program))


def test_a_socket_that_cannot_be_used_ends_the_program_saying_why(
    tmp_path: Path, programs: list[Program]
) -> None:
    (tmp_path / "server.py").write_text(SERVER)
    write_module(tmp_path / "mod.py", "VERSION = 1\n")
    program = Program(tmp_path, [sys.executable, "server.py", "localhost:99999"])
    programs.append(program)
    assert program.process.wait(30) == 1
    assert "watchd.reloader: sockets[0]: expected a port from 0 to 65535, got" in program.output()
    assert serving(program) == []


def test_watchd_reload_passes_its_socket_to_each_run_of_a_command(
    tmp_path: Path, programs: list[Program]
) -> None:
    """``watchd-reload --socket ADDR -- COMMAND``: a program that takes its socket from
    LISTEN_FDS (as gunicorn does) is restarted on a change and never refuses a client."""
    src = tmp_path / "src"
    src.mkdir()
    record = tmp_path / "server-record"
    server = str(REPO / "tests" / "helpers" / "listen_server.py")
    program = Program.reloader(
        tmp_path,
        "--socket",
        "127.0.0.1:0",
        "--watch",
        str(src),
        "--debounce",
        "20ms",
        "--",
        sys.executable,
        server,
        str(record),
        "--delay",
        "0.2",
    )
    programs.append(program)

    def rows(kind: str) -> list[list[str]]:
        lines = record.read_text().splitlines() if record.exists() else []
        return [line.split()[1:] for line in lines if line.split()[:1] == [kind]]

    def wait_rows(kind: str, count: int) -> list[list[str]]:
        def enough() -> bool:
            program.check_running()
            return len(rows(kind)) >= count

        program.wait(enough, f"{count} {kind} lines")
        return rows(kind)

    wait_rows("serving", 1)
    port = _listening_port(program.output())
    with Load(port) as load:
        wait_until(lambda: load.ok > 0, "a first answer")
        for restart in range(RELOADS):
            (src / "app.py").write_text(f"version {restart}")
            pid = wait_rows("serving", restart + 2)[-1][0]
            wait_until(lambda: load.served_by[pid] > 0, "an answer from the new server")  # noqa: B023
    assert load.failures == 0, load.first_errors
    starts = rows("start")
    assert len(starts) == RELOADS + 1
    for pid, listen_pid, listen_fds, names, _ns in starts:
        assert (listen_pid, listen_fds, names) == (pid, "1", Path(sys.executable).name)


def _listening_port(output: str) -> int:
    """The port the kernel chose, from ``passing 127.0.0.1:PORT to every run``."""
    (line,) = [line for line in output.splitlines() if "to every run" in line]
    return int(line.split("passing ", 1)[1].split()[0].rsplit(":", 1)[1])

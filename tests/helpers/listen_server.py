"""An HTTP server for tests that takes its socket from ``LISTEN_FDS`` (``sd_listen_fds``),
like gunicorn or uvicorn ``--fd 3``, and may be slow to start.

    python -m tests.helpers.listen_server RECORD [--delay S] [--port P] [--notify]
        [--status TEXT] [--fail-ready] [--stop-delay S]

Lines appended to RECORD: ``start <pid> <LISTEN_PID> <LISTEN_FDS> <LISTEN_FDNAMES> <ns>``
(``-`` for a variable that is not set), ``serving <pid> <ns>``, ``signal <pid> SIGTERM
<ns>``, ``exit <pid> 0 <ns>``. Every answer's body is the serving PID. Without
``LISTEN_FDS`` (or with ``--port``) it binds 127.0.0.1:P itself. ``--notify`` sends
``READY=1`` (and ``STATUS=``) to ``NOTIFY_SOCKET`` once it serves. ``--stop-delay`` keeps
answering for that long after SIGTERM (a graceful drain), then stops.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def record(path: str, *words: object) -> None:
    line = " ".join(str(word) for word in (*words, time.monotonic_ns())) + "\n"
    with open(path, "a") as out:
        out.write(line)


def sd_notify(message: str) -> None:
    address = os.environ.get("NOTIFY_SOCKET", "")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.sendto(message.encode(), address)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def do_GET(self) -> None:
        body = str(os.getpid()).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = False  # server_close() waits for the requests being answered
    allow_reuse_address = True


def make_server(port: int | None) -> Server:
    if port is None and os.environ.get("LISTEN_PID") == str(os.getpid()):
        server = Server(("127.0.0.1", 0), Handler, bind_and_activate=False)
        server.socket.close()
        server.socket = socket.socket(fileno=3)  # family and type read from the descriptor
        return server
    return Server(("127.0.0.1", port or 0), Handler)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("record")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before serving")
    parser.add_argument("--port", type=int, default=None, help="bind this port itself")
    parser.add_argument("--notify", action="store_true", help="READY=1 once serving")
    parser.add_argument("--status", default="serving", help="STATUS= sent with READY=1")
    parser.add_argument("--stop-delay", type=float, default=0.0)
    args = parser.parse_args()
    pid = os.getpid()
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    env = os.environ
    record(
        args.record,
        "start",
        pid,
        env.get("LISTEN_PID", "-"),
        env.get("LISTEN_FDS", "-"),
        env.get("LISTEN_FDNAMES", "-") or "-",
    )
    time.sleep(args.delay)
    server = make_server(args.port)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    record(args.record, "serving", pid)
    if args.notify:
        sd_notify(f"READY=1\nSTATUS={args.status}")
    signum = signal.sigwait({signal.SIGTERM, signal.SIGINT})
    record(args.record, "signal", pid, signal.Signals(signum).name)
    time.sleep(args.stop_delay)
    server.shutdown()
    thread.join()
    server.server_close()
    record(args.record, "exit", pid, 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The HTTP server the downtime benchmark restarts: standard library only, so every tool
runs the same program.

    python bench/server.py RECORD --port P [--fd N] [--delay S]

It serves on the socket it was given (``LISTEN_FDS`` for its PID, or ``--fd N``, circus's
way), else binds 127.0.0.1:P itself. After ``--delay`` seconds (an application's import
time) it serves, appends ``start <pid> <CLOCK_MONOTONIC ns>`` to RECORD and sends
``READY=1`` to ``NOTIFY_SOCKET`` if there is one. Every answer's body is its PID. SIGTERM
or SIGINT stops it gracefully: it stops accepting, finishes the requests it has accepted,
and exits 0.
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
    request_queue_size = 1024


def make_server(port: int, fd: int | None) -> Server:
    if fd is None and os.environ.get("LISTEN_PID") == str(os.getpid()):
        fd = 3
    if fd is None:
        return Server(("127.0.0.1", port), Handler)
    server = Server(("127.0.0.1", 0), Handler, bind_and_activate=False)
    server.socket.close()
    server.socket = socket.socket(fileno=fd)
    return server


def sd_notify(message: str) -> None:
    address = os.environ.get("NOTIFY_SOCKET", "")
    if address:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto(message.encode(), "\0" + address[1:] if address[0] == "@" else address)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("record")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--fd", type=int, default=None)
    parser.add_argument("--delay", type=float, default=0.0)
    args = parser.parse_args()
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    time.sleep(args.delay)  # the application's start-up
    server = make_server(args.port, args.fd)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    with open(args.record, "a") as out:
        out.write(f"start {os.getpid()} {time.monotonic_ns()}\n")
    sd_notify("READY=1")
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    server.shutdown()
    thread.join()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

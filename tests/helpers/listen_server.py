"""An HTTP server for tests that takes its socket from ``LISTEN_FDS`` (``sd_listen_fds``),
like gunicorn or uvicorn ``--fd 3``, and may be slow to start.

    python -m tests.helpers.listen_server RECORD [--delay S] [--port P] [--notify]
        [--status TEXT] [--gate PATH] [--fail-if PATH] [--unhealthy-if PATH]
        [--ping-until PATH] [--stop-delay S]

Lines appended to RECORD: ``start <pid> <LISTEN_PID> <LISTEN_FDS> <LISTEN_FDNAMES> <ns>``
(``-`` for a variable that is not set), ``serving <pid> <ns>``, ``signal <pid> SIGTERM
<ns>``, ``exit <pid> 0 <ns>``. Every answer's body is the serving PID. Without
``LISTEN_FDS`` (or with ``--port``) it binds 127.0.0.1:P itself. ``--notify`` sends
``READY=1`` (and ``STATUS=``) to ``NOTIFY_SOCKET`` once it serves. ``--stop-delay`` keeps
answering for that long after SIGTERM (a graceful drain), then stops. ``--gate`` waits
until PATH exists before serving; ``--fail-if`` exits 1 at once if PATH exists;
``--unhealthy-if`` answers 500 while PATH exists; ``--ping-until`` sends ``WATCHDOG=1`` at
half of ``WATCHDOG_USEC`` until PATH exists.
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


UNHEALTHY_IF: str | None = None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def do_GET(self) -> None:
        body = str(os.getpid()).encode()
        sick = UNHEALTHY_IF is not None and os.path.exists(UNHEALTHY_IF)
        self.send_response(500 if sick else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def ping(until: str) -> None:
    interval = int(os.environ["WATCHDOG_USEC"]) / 2e6
    while not os.path.exists(until):
        sd_notify("WATCHDOG=1")
        time.sleep(interval)


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
    parser.add_argument("--gate", help="serve only once this path exists")
    parser.add_argument("--fail-if", help="exit 1 at once if this path exists")
    parser.add_argument("--unhealthy-if", help="answer 500 while this path exists")
    parser.add_argument("--ping-until", help="WATCHDOG=1 pings until this path exists")
    args = parser.parse_args()
    global UNHEALTHY_IF
    UNHEALTHY_IF = args.unhealthy_if
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
    if args.fail_if and os.path.exists(args.fail_if):
        record(args.record, "exit", pid, 1)
        return 1
    time.sleep(args.delay)
    while args.gate and not os.path.exists(args.gate):
        stop = signal.sigpending() & {signal.SIGTERM, signal.SIGINT}
        if stop:  # asked to stop before it ever served
            record(args.record, "signal", pid, stop.pop().name)
            record(args.record, "exit", pid, 0)
            return 0
        time.sleep(0.02)
    server = make_server(args.port)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    record(args.record, "serving", pid)
    if args.notify:
        sd_notify(f"READY=1\nSTATUS={args.status}")
    if args.ping_until:
        threading.Thread(target=ping, args=(args.ping_until,), daemon=True).start()
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

"""A load client: a few threads sending HTTP requests back to back, each on a new
connection, counting answers and failures (refused, reset, timed out)."""

from __future__ import annotations

import socket
import threading
from collections import Counter
from types import TracebackType

REQUEST = b"GET / HTTP/1.0\r\nHost: test\r\n\r\n"


def get(host: str, port: int, timeout: float) -> str:
    """One request; the body of a 200 answer, else raise OSError."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(REQUEST)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.0 200") and not head.startswith(b"HTTP/1.1 200"):
        raise OSError(f"bad answer: {head[:40]!r}")
    return body.decode()


class Load:
    """``with Load(port) as load: …``; then ``load.ok``, ``load.failures``, ``load.errors``."""

    def __init__(self, port: int, clients: int = 4, timeout: float = 15.0) -> None:
        self.port = port
        self.timeout = timeout
        self.ok = 0
        self.errors: Counter[str] = Counter()
        # The first few failures in full, so that a failed assertion says what went wrong.
        self.first_errors: list[str] = []
        self.served_by: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run) for _ in range(clients)]

    @property
    def failures(self) -> int:
        return sum(self.errors.values())

    def bodies(self) -> list[str]:
        """Every distinct answer so far."""
        with self._lock:
            return list(self.served_by)

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                pid = get("127.0.0.1", self.port, self.timeout)
            except OSError as error:
                with self._lock:
                    self.errors[type(error).__name__] += 1
                    if len(self.first_errors) < 5:
                        self.first_errors.append(f"{type(error).__name__}: {error}")
                self._stop.wait(0.005)  # a refused connect returns at once: don't spin
                continue
            with self._lock:
                self.ok += 1
                self.served_by[pid] += 1

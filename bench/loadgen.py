"""A load generator: CONCURRENCY asyncio clients, each sending HTTP requests back to back,
every request on a new connection (as a browser's reload or a health check would), each
request recorded with its start, its end and how it ended."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from dataclasses import dataclass

REQUEST = b"GET / HTTP/1.0\r\nHost: bench\r\n\r\n"


@dataclass(frozen=True)
class Sample:
    start_ns: int
    end_ns: int
    outcome: str  # "ok", or what failed: "refused", "reset", "timeout", "bad answer", …
    server: str  # the answering server's PID ("" when it failed)


class LoadGenerator:
    """``with LoadGenerator(port, 50) as load: …``; then ``load.samples``."""

    def __init__(self, port: int, concurrency: int, timeout: float = 10.0) -> None:
        self.port = port
        self.concurrency = concurrency
        self.timeout = timeout
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def __enter__(self) -> LoadGenerator:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(self.timeout + 5)

    def served_by(self, server: str) -> bool:
        return any(sample.server == server for sample in reversed(self.samples[-500:]))

    async def _run(self) -> None:
        await asyncio.gather(*(self._client() for _ in range(self.concurrency)))

    async def _client(self) -> None:
        while not self._stop.is_set():
            start = time.monotonic_ns()
            outcome, server = await self._one()
            self.samples.append(Sample(start, time.monotonic_ns(), outcome, server))
            if outcome == "refused":
                await asyncio.sleep(0.001)  # a refusal comes back at once: do not spin

    async def _one(self) -> tuple[str, str]:
        try:
            async with asyncio.timeout(self.timeout):
                reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
                try:
                    writer.write(REQUEST)
                    answer = await reader.read()
                finally:
                    writer.close()
                    with contextlib.suppress(OSError):
                        await writer.wait_closed()
        except ConnectionRefusedError:
            return "refused", ""
        except ConnectionResetError:
            return "reset", ""
        except TimeoutError:
            return "timeout", ""
        except OSError as error:
            return type(error).__name__, ""
        head, _, body = answer.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.0 200"):
            return ("closed" if not answer else "bad answer"), ""
        return "ok", body.decode()

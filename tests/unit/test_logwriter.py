"""watchd's stderr writer: never blocks on a reader that stalls, and says what it dropped."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from pathlib import Path

from tests.helpers.wait import async_wait_until
from watchd.logwriter import LogWriter

LINES = 5_000


def line(i: int) -> bytes:
    return f"line {i:05d} {'x' * 80}\n".encode()


def write_all(writer: LogWriter, count: int) -> None:
    """Write *count* lines from a thread, so that a write that blocks fails the test
    instead of hanging it."""
    done = threading.Event()

    def run() -> None:
        for i in range(count):
            writer.write(line(i))
        done.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert done.wait(30), "a write blocked on a reader that stalled"
    thread.join()


def read_available(fd: int) -> bytes:
    os.set_blocking(fd, False)
    chunks = []
    try:
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
    except BlockingIOError:
        pass
    return b"".join(chunks)


def assert_contiguous_then_report(text: str, total: int) -> None:
    """Lines 0..k in order, then the report of exactly the lines missing."""
    rows = text.splitlines()
    report = [row for row in rows if row.startswith("watchd: dropped")]
    assert len(report) == 1, rows[-3:]
    kept = rows[: rows.index(report[0])]
    assert kept == [line(i).decode().rstrip("\n") for i in range(len(kept))]
    assert report[0] == f"watchd: dropped {total - len(kept)} log lines"
    assert rows[rows.index(report[0]) + 1 :] == []


def test_a_stalled_pipe_costs_lines_not_waiting_and_the_loss_is_reported() -> None:
    read_end, write_end = os.pipe()
    writer = LogWriter(write_end, limit=32 * 1024)
    try:

        async def scenario() -> bytes:
            # Nobody reads: the pipe (64 KiB) and the backlog (32 KiB) fill, the rest drops.
            for i in range(LINES):
                writer.write(line(i))
            assert writer.dropped > 0
            # The reader comes back: the backlog goes out from the loop, then the count.
            received = bytearray()

            def done() -> bool:
                received.extend(read_available(read_end))
                return received.endswith(b" log lines\n")

            await async_wait_until(done, "the drop report")
            return bytes(received)

        text = asyncio.run(scenario()).decode()
        assert_contiguous_then_report(text, LINES)
    finally:
        writer.close(timeout=0)
        os.close(read_end)
        os.close(write_end)


def test_the_shared_descriptor_is_left_blocking_for_others() -> None:
    read_end, write_end = os.pipe()
    writer = LogWriter(write_end)
    try:
        writer.write(b"hello\n")
        assert os.get_blocking(write_end)
        assert os.read(read_end, 100) == b"hello\n"
    finally:
        writer.close(timeout=0)
        os.close(read_end)
        os.close(write_end)


def test_lines_logged_from_another_thread_go_out_through_the_loop() -> None:
    read_end, write_end = os.pipe()
    writer = LogWriter(write_end, limit=1 << 20)
    try:

        async def scenario() -> bytes:
            writer.write(b"from the loop\n")  # the writer learns which loop is ours
            await asyncio.to_thread(write_all, writer, 2_000)  # 180 KB: more than the pipe
            received = bytearray()

            def done() -> bool:
                received.extend(read_available(read_end))
                return received.endswith(line(1_999))

            await async_wait_until(done, "every line from the thread")
            return bytes(received)

        rows = asyncio.run(scenario()).decode().splitlines()
        assert rows == ["from the loop", *(line(i).decode().rstrip() for i in range(2_000))]
        assert writer.dropped == 0
    finally:
        writer.close(timeout=0)
        os.close(read_end)
        os.close(write_end)


def test_close_gives_a_stalled_reader_a_bounded_time() -> None:
    read_end, write_end = os.pipe()
    writer = LogWriter(write_end, limit=1 << 20)
    try:
        write_all(writer, LINES)
        closed = threading.Event()

        def close() -> None:
            writer.close(0.2)
            closed.set()

        thread = threading.Thread(target=close, daemon=True)
        thread.start()
        assert closed.wait(30), "close waited for a reader that never came"
        thread.join()
        writer.write(b"after close\n")  # dropped, without an error
    finally:
        os.close(read_end)
        os.close(write_end)


def test_a_stalled_stream_socket_is_written_without_waiting() -> None:
    """journald's stream on stderr is a socket; its descriptor stays blocking."""
    ours, theirs = socket.socketpair()
    writer = LogWriter(ours.fileno(), limit=16 * 1024)
    try:
        write_all(writer, LINES)
        assert writer.dropped > 0
        assert ours.getblocking()
    finally:
        writer.close(timeout=0)
        ours.close()
        theirs.close()


def test_a_regular_file_gets_every_line(tmp_path: Path) -> None:
    path = tmp_path / "log"
    with open(path, "ab") as file:
        writer = LogWriter(file.fileno(), limit=1024)
        write_all(writer, LINES)
        writer.close()
    rows = path.read_text().splitlines()
    assert len(rows) == LINES
    assert writer.dropped == 0

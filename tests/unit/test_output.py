"""Child output: line splitting over a real pipe, and the bounded buffer of recent lines."""

from __future__ import annotations

import asyncio
import fcntl
import os

from watchd.supervise.output import MAX_LINE, LineReader, OutputBuffer


def test_buffer_keeps_only_the_last_lines() -> None:
    buffer = OutputBuffer(3)
    for i in range(10):
        buffer.append(f"line {i}")
    assert buffer.tail() == ["line 7", "line 8", "line 9"]
    assert buffer.tail(2) == ["line 8", "line 9"]
    assert buffer.tail(0) == []


def test_followers_see_new_lines_until_they_stop() -> None:
    buffer = OutputBuffer(10)
    seen: list[str] = []
    stop = buffer.follow(seen.append)
    buffer.append("a")
    stop()
    buffer.append("b")
    assert seen == ["a"]


def test_pipe_is_split_into_lines_with_partial_and_long_lines_handled() -> None:
    async def scenario() -> list[str]:
        lines: list[str] = []
        read_end, write_end = os.pipe()
        fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, 1024 * 1024)  # all writes fit: no blocking
        reader = LineReader(os.fdopen(read_end, "rb"), lines.append)
        os.write(write_end, b"first\nsec")
        os.write(write_end, b"ond\r\n" + b"x" * (MAX_LINE + 10) + b"\nbad \xff byte\nlast")
        os.close(write_end)
        await reader.drained(timeout=10)
        return lines

    lines = asyncio.run(scenario())
    assert lines[:2] == ["first", "second"]
    assert lines[2] == "x" * MAX_LINE and lines[3] == "x" * 10
    assert lines[4] == "bad \ufffd byte"
    assert lines[5] == "last"

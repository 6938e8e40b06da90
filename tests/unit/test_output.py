"""Child output: line splitting over a real pipe, and the bounded buffer of recent lines."""

from __future__ import annotations

import asyncio
import fcntl
import os
import time

from watchd.supervise.output import MAX_LINE, LineReader, OutputBuffer


def test_buffer_keeps_only_the_last_lines_each_with_the_time_it_was_read() -> None:
    buffer = OutputBuffer(3)
    for i in range(10):
        buffer.append(f"line {i}", 100.0 + i)
    assert buffer.tail() == [(107.0, "line 7"), (108.0, "line 8"), (109.0, "line 9")]
    assert buffer.tail(2) == [(108.0, "line 8"), (109.0, "line 9")]
    assert buffer.tail(0) == []
    assert buffer.tail(50) == buffer.tail()


def test_followers_see_new_lines_and_their_times_until_they_stop() -> None:
    buffer = OutputBuffer(10)
    seen: list[tuple[float, str]] = []
    stop = buffer.follow(lambda at, line: seen.append((at, line)))
    buffer.append("a", 1.5)
    stop()
    buffer.append("b", 2.5)
    assert seen == [(1.5, "a")]


def test_a_new_buffer_carries_on_with_the_old_ones_lines_and_followers() -> None:
    old = OutputBuffer(10)
    seen: list[str] = []
    stop = old.follow(lambda at, line: seen.append(line))
    for i in range(4):
        old.append(f"old {i}", float(i))
    new = OutputBuffer(3)  # a smaller log_lines now: the newest that fit
    new.carry_on(old)
    new.append("new", 9.0)
    assert new.tail() == [(2.0, "old 2"), (3.0, "old 3"), (9.0, "new")]
    assert seen == ["old 0", "old 1", "old 2", "old 3", "new"]
    stop()  # through the old buffer, as the follower got it
    new.append("unseen", 10.0)
    assert seen[-1] == "new"


def test_pipe_is_split_into_lines_with_partial_and_long_lines_handled() -> None:
    async def scenario() -> list[str]:
        lines: list[str] = []
        read_end, write_end = os.pipe()
        fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, 1024 * 1024)  # all writes fit: no blocking
        reader = LineReader(os.fdopen(read_end, "rb"), lambda line, _at: lines.append(line))
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


def test_each_line_is_stamped_with_the_wall_clock_time_it_was_read() -> None:
    async def scenario() -> list[tuple[float, str]]:
        lines: list[tuple[float, str]] = []
        got_two = asyncio.Event()

        def on_line(line: str, at: float) -> None:
            lines.append((at, line))
            if len(lines) == 2:
                got_two.set()

        read_end, write_end = os.pipe()
        reader = LineReader(os.fdopen(read_end, "rb"), on_line)
        os.write(write_end, b"one\ntwo\n")  # one read
        await asyncio.wait_for(got_two.wait(), 30)
        os.write(write_end, b"three")
        os.close(write_end)
        await reader.drained(timeout=10)
        return lines

    before = time.time()
    lines = asyncio.run(scenario())
    after = time.time()
    assert [line for _, line in lines] == ["one", "two", "three"]
    (one, _), (two, _), (three, _) = lines
    assert before <= one == two <= three <= after

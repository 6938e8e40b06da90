"""A `logs -f` reader's backlog: bounded by bytes, and a gap where lines were dropped."""

from __future__ import annotations

from watchd.control.follow import FollowBacklog, Gap


def drain(backlog: FollowBacklog[str]) -> list[str | Gap]:
    items: list[str | Gap] = []
    while (item := backlog.pop()) is not None:
        items.append(item)
    return items


def test_a_reader_that_keeps_up_gets_every_line() -> None:
    backlog = FollowBacklog[str](1024)
    backlog.put("one")
    backlog.put("two")
    assert drain(backlog) == ["one", "two"]
    assert backlog.size == 0


def test_long_lines_are_bounded_by_bytes_not_by_count() -> None:
    backlog = FollowBacklog[str](1024 * 1024)
    line = "x" * 65_536
    for _ in range(1000):  # 64 MB offered
        backlog.put(line)
    assert backlog.size <= 1024 * 1024
    items = drain(backlog)
    kept = [item for item in items if isinstance(item, str)]
    assert len(kept) == 15
    assert items[-1] == Gap(1000 - 15)


def test_the_gap_sits_where_the_lines_were_missed() -> None:
    backlog = FollowBacklog[str](200)
    for word in ("a", "b", "c", "d"):  # 65 bytes each: the fourth does not fit
        backlog.put(word)
    assert backlog.pop() == "a"
    backlog.put("e")  # room again: the gap first, then the line
    assert drain(backlog) == ["b", "c", Gap(1), "e"]


def test_one_line_larger_than_the_bound_still_passes_when_nothing_is_waiting() -> None:
    backlog = FollowBacklog[str](10)
    backlog.put("a long line")
    backlog.put("next")
    assert drain(backlog) == ["a long line", Gap(1)]

"""The event history: numbered without holes, bounded, and honest about what it dropped."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from watchd.observe.history import MAX_DETAIL, Event, History, Kind, gap_line


def body(event: Event) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(event.line)
    return decoded


def test_events_are_numbered_from_one_without_holes() -> None:
    history = History(clock=lambda: 1_700_000_000.0)
    events = [history.record(Kind.STATE, "web", **{"from": "stopped", "to": "starting"})]
    events.append(history.record(Kind.CONFIG, ok=True))
    assert [event.seq for event in events] == [1, 2]
    first = body(events[0])
    assert first["seq"] == 1 and first["job"] == "web" and first["kind"] == "state"
    assert first["from"] == "stopped" and first["to"] == "starting"
    assert first["at"].startswith("2023-11-1") and first["at"][19:23] == ".000"
    assert body(events[1])["job"] is None


def test_since_replays_exactly_the_events_after_a_seq() -> None:
    history = History()
    for number in range(10):
        history.record(Kind.CHANGE, "web", count=number)
    missed, events = history.since(7)
    assert missed == 0
    assert [event.seq for event in events] == [8, 9, 10]
    assert history.since(10) == (0, [])
    assert history.since(99) == (0, [])


def test_the_oldest_events_go_once_the_count_bound_is_reached() -> None:
    history = History(max_events=5)
    for _ in range(12):
        history.record(Kind.RESTART, "web", reason="exit")
    assert len(history) == 5
    assert history.first_seq == 8 and history.last_seq == 12
    missed, events = history.since(3)
    assert missed == 4  # seqs 4 to 7 were dropped
    assert [event.seq for event in events] == [8, 9, 10, 11, 12]


def test_the_history_is_bounded_by_bytes_as_well() -> None:
    history = History(max_events=1_000_000, max_bytes=64 * 1024)
    for _ in range(1000):
        history.record(Kind.CHANGE, "web", paths=["/srv/app/" + "x" * 200] * 20, count=20)
    assert history.size <= 64 * 1024
    assert 0 < len(history) < 1000
    assert history.last_seq == 1000


def test_an_oversized_detail_is_cut_not_kept_whole() -> None:
    history = History()
    event = history.record(Kind.CONFIG, ok=False, error="e" * 1_000_000)
    assert len(body(event)["error"]) == MAX_DETAIL


def test_a_file_name_that_is_not_utf8_is_escaped_not_fatal() -> None:
    history = History()
    event = history.record(Kind.CHANGE, "web", paths=["/srv/\udcff.py"], count=1)
    assert body(event)["paths"] == ["/srv/\udcff.py"]
    event.line.encode()  # sendable as it is


def test_listeners_hear_every_event_with_its_details_until_they_stop() -> None:
    history = History()
    heard: list[tuple[int, Mapping[str, Any]]] = []
    stop = history.listen(lambda event, details: heard.append((event.seq, details)))
    history.record(Kind.RESTART, "web", reason="change")
    stop()
    history.record(Kind.RESTART, "web", reason="manual")
    assert heard == [(1, {"reason": "change"})]


def test_a_gap_record_has_no_seq_and_says_how_many_were_missed() -> None:
    gap = json.loads(gap_line(42, 1_700_000_000.0))
    assert gap["seq"] is None and gap["kind"] == "gap" and gap["missed"] == 42


@given(st.integers(1, 50), st.integers(0, 200), st.integers(0, 220))
def test_since_accounts_for_every_seq_exactly_once(bound: int, recorded: int, since: int) -> None:
    history = History(max_events=bound)
    for _ in range(recorded):
        history.record(Kind.CHANGE, "web", count=1)
    missed, events = history.since(since)
    seqs = [event.seq for event in events]
    assert seqs == list(range(since + missed + 1, recorded + 1))

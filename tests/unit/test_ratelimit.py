"""Per-job flood limiting of output lines, on a virtual clock."""

from __future__ import annotations

import pytest

from watchd.ratelimit import FloodLimit


def feed(limit: FloodLimit, lines: int, start: float, rate: float) -> tuple[int, list[int]]:
    """*lines* lines at *rate* lines/s from *start*: (how many went through, gaps reported)."""
    passed, gaps = 0, []
    for i in range(lines):
        admitted, gap = limit.admit(start + i / rate)
        passed += admitted
        if gap:
            gaps.append(gap)
    return passed, gaps


def test_a_burst_within_the_limit_passes_whole() -> None:
    limit = FloodLimit(rate=100, burst=1000)
    passed, gaps = feed(limit, 1000, start=0.0, rate=1e9)
    assert passed == 1000
    assert gaps == []
    assert limit.report_at() is None


def test_a_flood_is_cut_to_the_rate_and_every_lost_line_is_counted() -> None:
    limit = FloodLimit(rate=1000, burst=5000, report_every=1.0)
    # 50,000 lines/s for 10 s.
    passed, gaps = feed(limit, 500_000, start=0.0, rate=50_000)
    assert 5000 + 1000 * 10 - 2 <= passed <= 5000 + 1000 * 10
    # Reported as the flood goes on, and nothing is counted twice or lost.
    assert sum(gaps) + limit.due(1e6) == 500_000 - passed
    assert len(gaps) >= 9


def test_the_gap_is_reported_before_the_next_line_that_gets_through() -> None:
    limit = FloodLimit(rate=10, burst=2, report_every=60)
    assert limit.admit(0.0) == (True, 0)
    assert limit.admit(0.0) == (True, 0)
    assert limit.admit(0.0) == (False, 0)
    assert limit.admit(0.01) == (False, 0)
    # A tenth of a second later one token is back: that line goes, after the gap of 2.
    assert limit.admit(0.11) == (True, 2)
    assert limit.report_at() is None


def test_a_flood_that_stops_dead_is_still_reported_when_due() -> None:
    limit = FloodLimit(rate=1, burst=1, report_every=1.0)
    limit.admit(5.0)
    for _ in range(7):
        assert limit.admit(5.2)[0] is False
    assert limit.report_at() == pytest.approx(6.2)
    assert limit.due(6.0) == 0
    assert limit.due(6.2) == 7
    assert limit.due(7.0) == 0
    assert limit.report_at() is None


def test_a_quiet_job_gets_its_whole_burst_back() -> None:
    limit = FloodLimit(rate=100, burst=50)
    feed(limit, 200, start=0.0, rate=1e9)
    passed, _ = feed(limit, 50, start=10.0, rate=1e9)
    assert passed == 50


def test_time_going_backwards_grants_nothing() -> None:
    limit = FloodLimit(rate=100, burst=1)
    assert limit.admit(10.0)[0]
    assert not limit.admit(5.0)[0]
    assert not limit.admit(10.0)[0]


def test_nonsense_limits_are_refused() -> None:
    with pytest.raises(ValueError):
        FloodLimit(rate=0, burst=10)
    with pytest.raises(ValueError):
        FloodLimit(rate=10, burst=0)

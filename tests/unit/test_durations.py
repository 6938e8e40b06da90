from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from watchd.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("250ms", 0.25), ("2s", 2.0), ("1m", 60.0), ("1h", 3600.0), ("1.5s", 1.5), (3, 3.0)],
)
def test_durations_parse(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["soon", "10 parsecs", "-1s", "", True, None, [1]])
def test_bad_durations_say_what_was_expected(bad: object) -> None:
    with pytest.raises(ValueError, match="expected a duration"):
        parse_duration(bad)


@given(st.integers(0, 10**6))
def test_milliseconds_round_trip(ms: int) -> None:
    assert parse_duration(f"{ms}ms") == pytest.approx(ms / 1000)


def test_format_is_short() -> None:
    assert format_duration(0.85) == "850ms"
    assert format_duration(12.4) == "12s"
    assert format_duration(184) == "3m04s"
    assert format_duration(7500) == "2h05m"

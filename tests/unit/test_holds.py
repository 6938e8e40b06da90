"""Holding a job's changes: watchctl holds, version-control locks, and stale locks."""

from __future__ import annotations

from watchd.watch.base import Change, ChangeKind
from watchd.watch.holds import Holds

LOCK = "/srv/app/.git/index.lock"
WALL = 1_700_000_000.0  # wall clock at monotonic 0


def change(name: str) -> Change:
    return Change(ChangeKind.MODIFIED, f"/srv/app/{name}")


def fresh_lock(at: float = 0.0) -> dict[str, tuple[int, int]]:
    """A lock written at monotonic time *at*."""
    return {LOCK: (int((WALL + at) * 1e9), 42)}


def test_nothing_held_passes_changes_straight_on() -> None:
    holds = Holds()
    holds.observe({}, 0.0, WALL)
    assert holds.offer([change("a.py")]) == [change("a.py")]
    assert holds.held_by is None


def test_a_watchctl_hold_keeps_changes_until_release_and_gives_them_once() -> None:
    holds = Holds()
    holds.manual = True
    assert holds.offer([change("a.py"), change("b.py")]) == []
    assert holds.offer([change("a.py")]) == []
    assert holds.held_by == "watchctl"
    holds.manual = False
    assert holds.flush() == [change("a.py"), change("b.py")]
    assert holds.flush() == []


def test_a_lock_holds_while_it_exists() -> None:
    holds = Holds()
    holds.observe(fresh_lock(), 0.5, WALL + 0.5, active=True)
    assert holds.offer([change("a.py")]) == []
    assert holds.held_by == LOCK
    holds.observe({}, 1.0, WALL + 1.0)
    assert holds.held_by is None
    assert holds.flush() == [change("a.py")]


def test_a_long_operation_that_keeps_changing_the_tree_holds_past_stale_after() -> None:
    holds = Holds(stale_after=10.0)
    for second in range(0, 40):
        holds.observe(fresh_lock(), float(second), WALL + second, active=True)
        holds.offer([change(f"f{second}.py")])
    assert holds.held_by == LOCK
    holds.observe({}, 40.0, WALL + 40)
    assert len(holds.flush()) == 40


def test_a_lock_rewritten_by_each_step_of_a_rebase_holds_throughout() -> None:
    holds = Holds(stale_after=10.0)
    rebase = "/srv/app/.git/rebase-merge"
    for step in range(10):
        at = step * 8.0  # each step slower than anything but stale_after
        holds.observe({rebase: (int((WALL + at) * 1e9), 7)}, at, WALL + at)
        assert holds.held_by == rebase


def test_a_lock_left_by_a_crashed_git_stops_holding_after_stale_after() -> None:
    holds = Holds(stale_after=10.0)
    holds.observe(fresh_lock(), 0.0, WALL, active=True)
    assert holds.offer([change("a.py")]) == []
    assert holds.observe(fresh_lock(), 9.9, WALL + 9.9) == []
    assert holds.held_by == LOCK
    assert holds.observe(fresh_lock(), 10.0, WALL + 10.0) == [LOCK]
    assert holds.held_by is None
    assert holds.flush() == [change("a.py")]
    # Ignored from then on: a change goes straight through.
    holds.observe(fresh_lock(), 11.0, WALL + 11.0, active=True)
    assert holds.offer([change("b.py")]) == [change("b.py")]


def test_an_old_lock_first_seen_holds_nothing() -> None:
    holds = Holds(stale_after=10.0)
    old = {LOCK: (int((WALL - 3600) * 1e9), 42)}
    assert holds.observe(old, 0.0, WALL, active=True) == [LOCK]
    assert holds.offer([change("a.py")]) == [change("a.py")]


def test_a_stale_lock_that_is_rewritten_holds_again() -> None:
    holds = Holds(stale_after=10.0)
    holds.observe({LOCK: (int((WALL - 3600) * 1e9), 42)}, 0.0, WALL)
    assert holds.held_by is None
    holds.observe(fresh_lock(5.0), 5.0, WALL + 5.0)
    assert holds.held_by == LOCK


def test_watchctl_and_a_lock_together_hold_until_both_end() -> None:
    holds = Holds()
    holds.manual = True
    holds.observe(fresh_lock(), 0.0, WALL)
    holds.offer([change("a.py")])
    holds.manual = False
    assert holds.flush() == []
    assert holds.held_by == LOCK
    holds.observe({}, 1.0, WALL + 1)
    assert holds.flush() == [change("a.py")]

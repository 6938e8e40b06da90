"""The job state machine, driven with a virtual clock: no processes, no sleeps."""

from __future__ import annotations

import signal
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from watchd.config.model import JobConfig, OnChange, RestartPolicy
from watchd.supervise import events as ev
from watchd.supervise.job import Job
from watchd.supervise.states import TRANSITIONS, IllegalTransition, State, check_transition

BASE = JobConfig(name="web", command=("true",), source=Path("/etc/watchd/jobs.d/web.yaml"))


class Driver:
    """Plays the runner's part: carries out actions at once, against a virtual clock."""

    def __init__(self, config: JobConfig = BASE) -> None:
        self.job = Job(config)
        self.now = 1000.0
        self.next_pid = 100
        self.actions: list[ev.Action] = []
        self.timers: dict[ev.Timer, float] = {}
        self.spawns = 0
        self.stops = 0
        self.signals: list[signal.Signals] = []
        self.builds = 0
        self.spawn_error: str | None = None

    def state(self) -> State:
        return self.job.state

    def send(self, event: ev.Input) -> None:
        queue = list(self.job.handle(event, self.now))
        while queue:
            action = queue.pop(0)
            self.actions.append(action)
            queue += self._carry_out(action)

    def _carry_out(self, action: ev.Action) -> list[ev.Action]:
        match action:
            case ev.Spawn():
                self.spawns += 1
                if self.spawn_error:
                    return self.job.handle(ev.SpawnFailed(self.spawn_error), self.now)
                self.next_pid += 1
                return self.job.handle(ev.Spawned(self.next_pid), self.now)
            case ev.StopChild():
                self.stops += 1
            case ev.SignalChild():
                self.signals.append(action.signal)
            case ev.RunBeforeRestart():
                self.builds += 1
            case ev.SetTimer():
                self.timers[action.timer] = action.at
            case ev.CancelTimer():
                self.timers.pop(action.timer, None)
        return []

    def advance(self, seconds: float) -> None:
        """Move the clock, firing due timers in order."""
        end = self.now + seconds
        while True:
            due = sorted((at, t) for t, at in self.timers.items() if at <= end)
            if not due:
                break
            at, timer = due[0]
            del self.timers[timer]
            self.now = max(self.now, at)
            self.send(ev.TimerFired(timer))
        self.now = end

    def child_exits(self, code: int) -> None:
        self.send(ev.Exited(code))


def started(config: JobConfig = BASE) -> Driver:
    driver = Driver(config)
    driver.send(ev.Start("config", "job added"))
    assert driver.state() is State.RUNNING
    return driver


def test_start_spawns_and_runs() -> None:
    driver = started()
    assert driver.spawns == 1
    assert driver.job.pid == 101
    assert driver.job.restarts == 0


def test_change_restarts_after_quiet_window_and_new_child_waits_for_old() -> None:
    driver = started()
    driver.send(ev.ChangeSeen("/srv/app/views.py"))
    driver.advance(0.05)
    assert driver.stops == 0, "acted before the quiet window passed"
    driver.advance(0.1)
    assert driver.stops == 1
    assert driver.state() is State.STOPPING
    assert driver.spawns == 1, "new child spawned before the old one was gone"
    driver.child_exits(-15)
    assert driver.spawns == 2
    assert driver.state() is State.RUNNING
    assert driver.job.restarts == 1
    trigger = driver.job.last_trigger
    assert trigger is not None and trigger.kind == "change"
    assert trigger.detail == "/srv/app/views.py"


def test_storm_of_changes_restarts_once() -> None:
    driver = started()
    for i in range(5000):
        driver.send(ev.ChangeSeen(f"/srv/app/f{i}.py"))
        driver.advance(0.0001)
    driver.advance(1.0)
    driver.child_exits(-15)
    driver.advance(5.0)
    assert driver.stops == 1
    assert driver.spawns == 2
    assert "and 4999 more" in (driver.job.last_trigger.detail if driver.job.last_trigger else "")


def test_a_never_pausing_stream_still_acts_within_the_cap() -> None:
    driver = started(replace(BASE, debounce=0.1, debounce_max=2.0))
    while driver.stops == 0:
        driver.send(ev.ChangeSeen("/srv/app/log.py"))
        driver.advance(0.05)
        assert driver.now < 1000.0 + 2.1, "the debounce cap did not bound the wait"


def test_changes_during_a_restart_queue_exactly_one_more() -> None:
    driver = started()
    driver.send(ev.ChangeSeen("/a.py"))
    driver.advance(0.2)
    assert driver.state() is State.STOPPING
    for _ in range(3):
        driver.send(ev.ChangeSeen("/b.py"))
        driver.advance(0.2)
    driver.child_exits(-15)  # the first restart completes, the queued one begins
    assert driver.spawns == 2
    assert driver.stops == 2
    driver.child_exits(-15)
    driver.advance(5)
    assert driver.spawns == 3
    assert driver.stops == 2


def test_restart_me_exit_restarts_at_once_and_is_not_a_failure() -> None:
    driver = started()
    for _ in range(8):
        driver.child_exits(3)
        assert driver.state() is State.RUNNING
    assert driver.spawns == 9
    assert not driver.timers, "a restart-me exit must not back off"
    last = driver.job.last_trigger
    assert last is not None and last.kind == "exit" and last.detail == "exit status 3"


def test_tight_restart_me_loop_is_treated_as_failing() -> None:
    driver = started()
    for _ in range(11):
        driver.child_exits(3)
    assert driver.state() is State.BACKOFF


def test_crash_backs_off_exponentially_then_fails_at_start_limit() -> None:
    driver = started(replace(BASE, start_limit_burst=5, start_limit_interval=100))
    delays = []
    for _ in range(4):
        driver.child_exits(1)
        assert driver.state() is State.BACKOFF
        delays.append(driver.timers[ev.Timer.BACKOFF] - driver.now)
        driver.advance(delays[-1])
        assert driver.state() is State.RUNNING
    assert delays == pytest.approx([0.1, 0.2, 0.4, 0.8])
    driver.child_exits(1)
    assert driver.state() is State.FAILED
    assert not driver.timers


def test_backoff_is_capped() -> None:
    driver = started(replace(BASE, start_limit_burst=100, backoff_max=1.0))
    for _ in range(10):
        driver.child_exits(1)
        delay = driver.timers[ev.Timer.BACKOFF] - driver.now
        driver.advance(delay)
    assert delay == pytest.approx(1.0)


def test_backoff_resets_after_the_child_stays_up() -> None:
    driver = started(replace(BASE, start_limit_burst=100))
    for _ in range(3):
        driver.child_exits(1)
        driver.advance(driver.timers[ev.Timer.BACKOFF] - driver.now)
    driver.advance(10.0)
    driver.child_exits(1)
    assert driver.timers[ev.Timer.BACKOFF] - driver.now == pytest.approx(0.1)


def test_file_change_wakes_a_failed_job_at_once() -> None:
    driver = started(replace(BASE, start_limit_burst=1))
    driver.child_exits(1)
    assert driver.state() is State.FAILED
    driver.send(ev.ChangeSeen("/srv/app/fix.py"))
    driver.advance(0.2)
    assert driver.state() is State.RUNNING


def test_file_change_during_backoff_restarts_at_once_and_resets_backoff() -> None:
    driver = started(replace(BASE, start_limit_burst=100))
    for _ in range(5):
        driver.child_exits(1)
        driver.advance(driver.timers[ev.Timer.BACKOFF] - driver.now)
    driver.child_exits(1)
    assert driver.state() is State.BACKOFF
    driver.send(ev.ChangeSeen("/srv/app/fix.py"))
    driver.advance(0.1)
    assert driver.state() is State.RUNNING
    assert ev.Timer.BACKOFF not in driver.timers
    driver.child_exits(1)
    assert driver.timers[ev.Timer.BACKOFF] - driver.now == pytest.approx(0.1)


def test_clean_exit_stays_down_under_on_failure() -> None:
    driver = started()
    driver.child_exits(0)
    assert driver.state() is State.EXITED


def test_always_restarts_a_clean_exit() -> None:
    driver = started(replace(BASE, restart=RestartPolicy.ALWAYS))
    driver.child_exits(0)
    assert driver.state() is State.BACKOFF
    driver.advance(1)
    assert driver.state() is State.RUNNING


def test_never_leaves_a_crashed_child_down() -> None:
    driver = started(replace(BASE, restart=RestartPolicy.NEVER))
    driver.child_exits(2)
    assert driver.state() is State.EXITED


def test_signal_on_change_sends_the_signal_and_keeps_the_child() -> None:
    driver = started(replace(BASE, on_change=OnChange("signal", signal.SIGHUP)))
    driver.send(ev.ChangeSeen("/etc/app.conf"))
    driver.advance(1)
    assert driver.signals == [signal.SIGHUP]
    assert driver.stops == 0
    assert driver.job.pid == 101


def test_on_change_none_ignores_changes() -> None:
    driver = started(replace(BASE, on_change=OnChange("none")))
    driver.send(ev.ChangeSeen("/etc/app.conf"))
    driver.advance(1)
    assert driver.stops == 0 and not driver.timers


def test_failed_before_restart_keeps_the_old_child() -> None:
    driver = started(replace(BASE, before_restart=("make",)))
    driver.send(ev.ChangeSeen("/a.c"))
    driver.advance(1)
    assert driver.builds == 1 and driver.stops == 0
    driver.send(ev.BeforeRestartDone(False, "exit status 2"))
    assert driver.state() is State.RUNNING and driver.stops == 0
    driver.send(ev.ChangeSeen("/a.c"))
    driver.advance(1)
    driver.send(ev.BeforeRestartDone(True, "exit status 0"))
    assert driver.stops == 1


def test_stop_stops_and_a_change_does_not_start_a_stopped_job() -> None:
    driver = started()
    driver.send(ev.Stop())
    assert driver.state() is State.STOPPING
    driver.child_exits(-15)
    assert driver.state() is State.STOPPED
    assert driver.job.pid is None
    driver.send(ev.ChangeSeen("/a.py"))
    driver.advance(1)
    assert driver.state() is State.STOPPED and driver.spawns == 1


def test_manual_restart_of_a_failed_job_starts_it() -> None:
    driver = started(replace(BASE, start_limit_burst=1))
    driver.child_exits(1)
    driver.send(ev.Restart())
    assert driver.state() is State.RUNNING
    trigger = driver.job.last_trigger
    assert trigger is not None and trigger.kind == "manual"


def test_spawn_failure_counts_as_a_failure() -> None:
    driver = Driver(replace(BASE, start_limit_burst=2))
    driver.spawn_error = "No such file or directory: 'nope'"
    driver.send(ev.Start())
    assert driver.state() is State.BACKOFF
    driver.advance(1)
    assert driver.state() is State.FAILED


def test_illegal_transition_raises() -> None:
    with pytest.raises(IllegalTransition):
        check_transition(State.STOPPED, State.RUNNING)


def test_every_state_can_be_stopped_or_is_stopping() -> None:
    for state, targets in TRANSITIONS.items():
        assert state in (State.STOPPED, State.STOPPING, State.RUNNING) or (
            State.STOPPED in targets or State.STOPPING in targets
        )


inputs = st.one_of(
    st.just(ev.ChangeSeen("/x.py")),
    st.sampled_from([ev.Start(), ev.Stop(), ev.Restart()]),
    st.sampled_from([0, 1, 3, -9, -15]).map(lambda code: ("exit", code)),
    st.floats(0.0, 40.0).map(lambda dt: ("advance", dt)),
)


@given(st.lists(inputs, max_size=60))
def test_any_sequence_keeps_the_machine_consistent(steps: list[object]) -> None:
    driver = started()
    for step in steps:
        if isinstance(step, tuple) and step[0] == "advance":
            driver.advance(float(step[1]))
        elif isinstance(step, tuple):
            if driver.job.pid is not None:
                driver.child_exits(int(step[1]))
        else:
            driver.send(step)  # type: ignore[arg-type]
        has_child = driver.job.state in (State.RUNNING, State.STOPPING)
        assert (driver.job.pid is not None) == has_child
        assert driver.spawns - driver.job.restarts == 1

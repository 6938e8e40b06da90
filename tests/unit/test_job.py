"""The job state machine, driven with a virtual clock: no processes, no sleeps."""

from __future__ import annotations

import signal
from dataclasses import replace

import pytest

from tests.helpers.job_driver import BASE, Driver
from watchd.config.model import ChangeAction, JobConfig, OnChange, RestartPolicy
from watchd.supervise import events as ev
from watchd.supervise.states import StatusWord

W = StatusWord


def started(config: JobConfig = BASE) -> Driver:
    driver = Driver(config)
    driver.send(ev.Start(ev.TriggerKind.CONFIG, "job added"))
    assert driver.word() is W.RUNNING
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
    assert driver.word() is W.STOPPING
    assert driver.spawns == 1, "new child spawned before the old one was gone"
    driver.child_exits(-15)
    assert driver.spawns == 2
    assert driver.word() is W.RUNNING
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
    assert driver.word() is W.STOPPING
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
        assert driver.word() is W.RUNNING
    assert driver.spawns == 9
    assert not driver.timers, "a restart-me exit must not back off"
    last = driver.job.last_trigger
    assert last is not None and last.kind == "exit" and last.detail == "exit status 3"


def test_tight_restart_me_loop_is_treated_as_failing() -> None:
    driver = started()
    for _ in range(11):
        driver.child_exits(3)
    assert driver.word() is W.BACKOFF


def test_crash_backs_off_exponentially_then_fails_at_start_limit() -> None:
    driver = started(replace(BASE, start_limit_burst=5, start_limit_interval=100))
    delays = []
    for _ in range(4):
        driver.child_exits(1)
        assert driver.word() is W.BACKOFF
        delays.append(driver.timers[ev.Timer.BACKOFF] - driver.now)
        driver.advance(delays[-1])
        assert driver.word() is W.RUNNING
    assert delays == pytest.approx([0.1, 0.2, 0.4, 0.8])
    driver.child_exits(1)
    assert driver.word() is W.FAILED
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
    assert driver.word() is W.FAILED
    driver.send(ev.ChangeSeen("/srv/app/fix.py"))
    driver.advance(0.2)
    assert driver.word() is W.RUNNING


def test_file_change_during_backoff_restarts_at_once_and_resets_backoff() -> None:
    driver = started(replace(BASE, start_limit_burst=100))
    for _ in range(5):
        driver.child_exits(1)
        driver.advance(driver.timers[ev.Timer.BACKOFF] - driver.now)
    driver.child_exits(1)
    assert driver.word() is W.BACKOFF
    driver.send(ev.ChangeSeen("/srv/app/fix.py"))
    driver.advance(0.1)
    assert driver.word() is W.RUNNING
    assert ev.Timer.BACKOFF not in driver.timers
    driver.child_exits(1)
    assert driver.timers[ev.Timer.BACKOFF] - driver.now == pytest.approx(0.1)


def test_clean_exit_stays_down_under_on_failure() -> None:
    driver = started()
    driver.child_exits(0)
    assert driver.word() is W.EXITED


def test_always_restarts_a_clean_exit() -> None:
    driver = started(replace(BASE, restart=RestartPolicy.ALWAYS))
    driver.child_exits(0)
    assert driver.word() is W.BACKOFF
    driver.advance(1)
    assert driver.word() is W.RUNNING


def test_never_leaves_a_crashed_child_down() -> None:
    driver = started(replace(BASE, restart=RestartPolicy.NEVER))
    driver.child_exits(2)
    assert driver.word() is W.EXITED


def test_signal_on_change_sends_the_signal_and_keeps_the_child() -> None:
    driver = started(replace(BASE, on_change=OnChange(ChangeAction.SIGNAL, signal.SIGHUP)))
    driver.send(ev.ChangeSeen("/etc/app.conf"))
    driver.advance(1)
    assert driver.signals == [signal.SIGHUP]
    assert driver.stops == 0
    assert driver.job.pid == 101


def test_on_change_none_ignores_changes() -> None:
    driver = started(replace(BASE, on_change=OnChange(ChangeAction.NONE)))
    driver.send(ev.ChangeSeen("/etc/app.conf"))
    driver.advance(1)
    assert driver.stops == 0 and not driver.timers


def test_failed_before_restart_keeps_the_old_child() -> None:
    driver = started(replace(BASE, before_restart=("make",)))
    driver.send(ev.ChangeSeen("/a.c"))
    driver.advance(1)
    assert driver.builds == 1 and driver.stops == 0
    driver.build_ends(ok=False)
    assert driver.word() is W.RUNNING and driver.stops == 0
    driver.send(ev.ChangeSeen("/a.c"))
    driver.advance(1)
    driver.build_ends(ok=True)
    assert driver.stops == 1


def test_stop_stops_and_a_change_does_not_start_a_stopped_job() -> None:
    driver = started()
    driver.send(ev.Stop())
    assert driver.word() is W.STOPPING
    driver.child_exits(-15)
    assert driver.word() is W.STOPPED
    assert driver.job.pid is None
    driver.send(ev.ChangeSeen("/a.py"))
    driver.advance(1)
    assert driver.word() is W.STOPPED and driver.spawns == 1


def test_manual_restart_of_a_failed_job_starts_it() -> None:
    driver = started(replace(BASE, start_limit_burst=1))
    driver.child_exits(1)
    driver.send(ev.Restart())
    assert driver.word() is W.RUNNING
    trigger = driver.job.last_trigger
    assert trigger is not None and trigger.kind == "manual"


def test_spawn_failure_counts_as_a_failure() -> None:
    driver = Driver(replace(BASE, start_limit_burst=2))
    driver.spawn_error = "No such file or directory: 'nope'"
    driver.send(ev.Start())
    assert driver.word() is W.BACKOFF
    driver.advance(1)
    assert driver.word() is W.FAILED


def test_a_change_during_a_failing_before_restart_builds_again() -> None:
    driver = started(replace(BASE, before_restart=("make",)))
    driver.send(ev.ChangeSeen("/a.c"))
    driver.advance(1)
    driver.send(ev.ChangeSeen("/fix.c"))  # saved while the first build still runs
    driver.advance(1)
    driver.build_ends(ok=False)
    assert driver.builds == 2 and driver.building, "the fix was not built"
    driver.build_ends(ok=True)
    assert driver.stops == 1
    driver.child_exits(-15)
    trigger = driver.job.last_trigger
    assert trigger is not None and trigger.detail == "/fix.c"
    assert driver.job.settled


def test_stop_during_before_restart_stops_the_step_too() -> None:
    driver = started(replace(BASE, before_restart=("make",)))
    driver.send(ev.ChangeSeen("/a.c"))
    driver.advance(1)
    assert driver.building
    driver.send(ev.Stop())
    assert not driver.building and driver.stops == 1
    driver.child_exits(-15)
    assert driver.word() is W.STOPPED and driver.spawns == 1


def test_child_exiting_during_before_restart_gets_the_build_once_it_runs_again() -> None:
    driver = started(replace(BASE, before_restart=("make",)))
    driver.send(ev.ChangeSeen("/a.c"))
    driver.advance(1)
    driver.child_exits(3)  # restart me, while the step runs
    assert driver.word() is W.RUNNING and driver.spawns == 2
    assert driver.builds == 2, "the new child did not get the step's build"
    driver.build_ends(ok=True)
    driver.child_exits(-15)
    assert driver.spawns == 3 and driver.job.settled


def test_an_exec_that_fails_after_the_fork_is_a_start_failure() -> None:
    driver = started(replace(BASE, start_limit_burst=1))
    driver.child_exits(127, "Permission denied: '/srv/app/server'")
    assert driver.word() is W.FAILED and driver.job.pid is None
    trigger = driver.job.last_trigger
    assert trigger is not None
    assert trigger.detail == "failed to start: Permission denied: '/srv/app/server'"


def test_an_oom_kill_is_the_last_trigger_and_a_failure_that_backs_off() -> None:
    driver = started()
    driver.children -= 1
    driver.send(ev.Exited(-signal.SIGKILL, None, oom_killed=True))
    trigger = driver.job.last_trigger
    assert trigger is not None and trigger.kind == "oom-killed"
    assert "OOM killer" in trigger.detail
    assert driver.word() is W.BACKOFF
    assert driver.job.failures == 1


def test_a_clean_exit_after_an_oom_kill_elsewhere_in_the_tree_is_an_exit() -> None:
    driver = started(replace(BASE, restart=RestartPolicy.NEVER))
    driver.children -= 1
    driver.send(ev.Exited(0, None, oom_killed=True))
    trigger = driver.job.last_trigger
    assert trigger is not None and trigger.kind == "exit"

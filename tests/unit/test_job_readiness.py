"""Readiness, overlap restarts, health and the watchdog in the job state machine, driven
with a virtual clock: what a user sees in status at each step."""

from __future__ import annotations

from dataclasses import replace

from tests.helpers.job_driver import BASE, Driver
from watchd.config.model import HealthCheck, JobConfig, Probe, Readiness, RestartMode
from watchd.supervise import events as ev
from watchd.supervise.states import StatusWord

W = StatusWord
NOTIFY = replace(BASE, ready=Readiness("notify"), ready_timeout=5.0)
OVERLAP = replace(NOTIFY, restart_mode=RestartMode.OVERLAP)


def started(config: JobConfig = NOTIFY) -> Driver:
    driver = Driver(config)
    driver.send(ev.Start(ev.TriggerKind.CONFIG, "job added"))
    driver.ready()
    assert driver.word() is W.RUNNING
    return driver


def kinds(driver: Driver) -> list[str]:
    return [type(action).__name__ for action in driver.actions]


def test_a_job_with_readiness_is_starting_until_its_child_is_ready() -> None:
    driver = Driver(NOTIFY)
    driver.send(ev.Start())
    assert (driver.word(), driver.job.pid, driver.job.ready) == (W.STARTING, 101, False)
    assert driver.awaiting == [101]
    driver.advance(4.9)
    driver.ready()
    assert (driver.word(), driver.job.ready) == (W.RUNNING, True)
    assert ev.Timer.READY not in driver.timers


def test_a_job_without_readiness_is_running_once_spawned_and_ready_is_none() -> None:
    driver = Driver(BASE)
    driver.send(ev.Start())
    assert (driver.word(), driver.job.ready) == (W.RUNNING, None)


def test_not_ready_in_time_stops_the_child_and_backs_off_as_a_failed_start() -> None:
    driver = Driver(NOTIFY)
    driver.send(ev.Start())
    driver.advance(5.0)
    assert driver.word() is W.STOPPING and driver.stops == 1
    trigger = driver.job.last_trigger
    assert trigger is not None
    assert (trigger.kind, trigger.detail) == ("ready-timeout", "not ready within 5s")
    driver.child_exits(-15)
    assert driver.word() is W.BACKOFF
    assert driver.job.start_error == "not ready within 5s"
    driver.advance(0.1)
    assert driver.spawns == 2 and driver.word() is W.STARTING


def test_never_ready_hits_the_start_limit() -> None:
    driver = Driver(replace(NOTIFY, start_limit_burst=2, start_limit_interval=60.0))
    driver.send(ev.Start())
    for _ in range(2):
        driver.advance(5.0)
        driver.child_exits(-15)
        driver.advance(1.0)
    assert driver.word() is W.FAILED


def test_a_change_while_getting_ready_restarts_once_it_is_ready() -> None:
    driver = Driver(NOTIFY)
    driver.send(ev.Start())
    driver.send(ev.ChangeSeen("/srv/app/a.py"))
    driver.advance(1.0)
    assert driver.stops == 0, "the start under way was interrupted"
    driver.ready()
    assert driver.stops == 1 and driver.word() is W.STOPPING
    driver.child_exits(-15)
    assert driver.spawns == 2 and driver.word() is W.STARTING


def test_overlap_starts_the_new_child_first_and_stops_the_old_once_it_is_ready() -> None:
    driver = started(OVERLAP)
    driver.send(ev.ChangeSeen("/srv/app/a.py"))
    driver.advance(1.0)
    assert (driver.word(), driver.job.pid, driver.job.successor_pid) == (W.RUNNING, 101, 102)
    assert driver.stops == 0 and driver.children == 1 and driver.successors == 1
    driver.ready()
    assert (driver.word(), driver.job.pid, driver.job.successor_pid) == (W.RUNNING, 102, None)
    assert driver.retiring == 1 and driver.stops == 1
    order = kinds(driver)
    assert order.index("SpawnSuccessor") < order.index("HandOver")
    assert driver.job.restarts == 1
    trigger = driver.job.last_trigger
    assert trigger is not None and trigger.kind == "change"


def test_a_failed_overlap_keeps_the_old_child_running_and_says_so() -> None:
    driver = started(OVERLAP)
    driver.send(ev.Restart())
    driver.successor_exits(1)
    assert (driver.word(), driver.job.pid, driver.job.ready) == (W.RUNNING, 101, True)
    trigger = driver.job.last_trigger
    assert trigger is not None and trigger.kind == "exit"
    assert trigger.detail == (
        "restart failed: the new child ended (exit status 1) before it was ready; "
        "pid 101 keeps running"
    )
    assert driver.stops == 0


def test_an_overlap_not_ready_in_time_drops_the_new_child() -> None:
    driver = started(OVERLAP)
    driver.send(ev.Restart())
    driver.advance(5.0)
    assert (driver.word(), driver.job.pid) == (W.RUNNING, 101)
    assert driver.successors == 0 and driver.retiring == 1
    trigger = driver.job.last_trigger
    assert trigger is not None and trigger.kind == "ready-timeout"


def test_the_old_child_ending_mid_overlap_leaves_the_new_one_to_get_ready() -> None:
    driver = started(OVERLAP)
    driver.send(ev.Restart())
    driver.child_exits(1)
    assert (driver.word(), driver.job.pid) == (W.STARTING, 102)
    driver.ready()
    assert (driver.word(), driver.job.pid) == (W.RUNNING, 102)


def test_a_change_mid_overlap_is_one_more_overlap_after_it() -> None:
    driver = started(OVERLAP)
    driver.send(ev.Restart())
    for name in ("a", "b", "c"):
        driver.send(ev.ChangeSeen(f"/srv/app/{name}.py"))
        driver.advance(1.0)
    driver.ready()  # 102 takes over, and 103 starts beside it at once
    assert (driver.job.pid, driver.job.successor_pid) == (102, 103)
    driver.ready()
    assert (driver.word(), driver.job.pid, driver.spawns) == (W.RUNNING, 103, 3)


def test_health_failures_restart_the_child_with_backoff() -> None:
    health = HealthCheck(Probe("tcp", "127.0.0.1", 8000), interval=1.0, retries=3)
    driver = started(replace(NOTIFY, health=health))
    assert driver.health_watched == [101]
    driver.send(ev.HealthFailed("Connection refused (3 in a row)"))
    assert driver.word() is W.STOPPING
    driver.child_exits(-15)
    assert driver.word() is W.BACKOFF
    trigger = driver.job.last_trigger
    assert trigger is not None and trigger.kind == "health"
    assert trigger.detail == "health check failed: Connection refused (3 in a row)"
    driver.advance(0.1)
    driver.ready()
    assert driver.health_watched == [101, 102]


def test_watchdog_pings_keep_the_child_and_their_absence_restarts_it() -> None:
    driver = started(replace(NOTIFY, watchdog=2.0))
    for _ in range(5):
        driver.advance(1.5)
        driver.send(ev.WatchdogPing())
    assert driver.stops == 0
    driver.advance(2.0)
    assert driver.word() is W.STOPPING
    trigger = driver.job.last_trigger
    assert trigger is not None
    assert (trigger.kind, trigger.detail) == ("watchdog", "no WATCHDOG=1 within 2s")

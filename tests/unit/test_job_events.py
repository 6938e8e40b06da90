"""A job's events, from the job machine driven on a virtual clock: each state change once,
with why; each restart once, with its reason; exits with their status or signal."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from tests.helpers.job_driver import BASE, Driver
from watchd.config.model import HealthCheck, JobConfig, Probe, Readiness, RestartMode
from watchd.observe.history import History
from watchd.observe.jobevents import MAX_PATHS, JobEvents
from watchd.supervise import events as ev
from watchd.watch.base import Change, ChangeKind


class Observed(Driver):
    """The driver, telling a history what the runner would tell it."""

    def __init__(self, config: JobConfig = BASE) -> None:
        super().__init__(config)
        self.history = History()
        self.events = JobEvents(self.history, self.job, config.name)

    def send(self, event: ev.Input) -> None:
        self.events.handling(event)
        super().send(event)
        self.events.settled()

    def perform(self, action: ev.Action) -> ev.Input | None:
        self.events.acting(action)
        return super().perform(action)

    def recorded(self, *keys: str) -> list[tuple[Any, ...]]:
        _, events = self.history.since(0)
        bodies = [json.loads(event.line) for event in events]
        return [tuple(body.get(key) for key in ("kind", *keys)) for body in bodies]


def test_a_start_is_two_state_events_and_no_restart() -> None:
    driver = Observed()
    driver.send(ev.Start(ev.TriggerKind.CONFIG, "job started"))
    assert driver.recorded("from", "to", "reason") == [
        ("state", "stopped", "starting", "config"),
        ("state", "starting", "running", "config"),
    ]


def test_a_change_restart_tells_the_stop_the_restart_and_the_new_child() -> None:
    driver = Observed(replace(BASE, debounce=0.1))
    driver.send(ev.Start())
    driver.send(ev.ChangeSeen("/srv/app.py"))
    driver.advance(0.2)
    driver.child_exits(-15)
    assert driver.recorded("from", "to", "reason", "signal")[2:] == [
        ("state", "running", "stopping", "change", None),
        ("state", "stopping", "starting", "change", "SIGTERM"),
        ("restart", None, None, "change", None),
        ("state", "starting", "running", "change", None),
    ]
    assert [event.seq for event in driver.history.since(0)[1]] == list(range(1, 7))


def test_a_crash_is_a_state_event_with_its_exit_status_then_a_restart_for_exit() -> None:
    driver = Observed(replace(BASE, backoff_initial=1.0))
    driver.send(ev.Start())
    driver.child_exits(2)
    driver.advance(1.5)
    assert driver.recorded("from", "to", "status", "detail")[2:] == [
        ("state", "running", "backoff", 2, "exit status 2"),
        ("state", "backoff", "starting", None, "exit status 2"),
        ("restart", None, None, None, "exit status 2"),
        ("state", "starting", "running", None, "exit status 2"),
    ]
    assert driver.recorded("reason")[4] == ("restart", "exit")


def test_an_exit_3_restart_passes_through_starting() -> None:
    driver = Observed()
    driver.send(ev.Start())
    driver.child_exits(3)
    assert driver.recorded("from", "to", "status")[2:] == [
        ("state", "running", "starting", 3),
        ("restart", None, None, None),
        ("state", "starting", "running", None),
    ]


def test_a_failed_spawn_says_why() -> None:
    driver = Observed()
    driver.spawn_error = "No such file or directory: 'nope'"
    driver.send(ev.Start())
    (last,) = driver.recorded("to", "detail")[-1:]
    assert last == ("state", "backoff", "failed to start: No such file or directory: 'nope'")


def test_moves_a_user_cannot_see_are_not_events() -> None:
    driver = Observed(replace(BASE, before_restart=("make",), debounce=0.1))
    driver.send(ev.Start())
    driver.send(ev.ChangeSeen("/srv/app.py"))
    driver.advance(0.2)  # running -> building: still "running" to a user
    assert driver.builds == 1
    assert len(driver.recorded()) == 2


def test_a_change_batch_names_at_most_twenty_paths_and_counts_them_all() -> None:
    history = History()
    events = JobEvents(history, Observed().job, "web")
    events.changes([Change(ChangeKind.MODIFIED, f"/srv/{n}.py") for n in range(500)])
    events.changes([Change(ChangeKind.OVERFLOW, "/srv")])
    change, overflow = (json.loads(event.line) for event in history.since(0)[1])
    assert change["kind"] == "change" and change["count"] == 500
    assert change["paths"] == [f"/srv/{n}.py" for n in range(MAX_PATHS)]
    assert overflow["kind"] == "overflow" and overflow["roots"] == ["/srv"]


def test_a_fallback_to_polling_is_an_event_and_chosen_polling_is_not() -> None:
    history = History()
    events = JobEvents(history, Observed().job, "web")
    events.armed("poll", "poll")
    events.armed("inotify", "auto")
    events.armed("poll (inotify watch limit reached)", "auto")
    (fallback,) = (json.loads(event.line) for event in history.since(0)[1])
    assert fallback["kind"] == "fallback"
    assert fallback["reason"] == "inotify watch limit reached"


def test_the_events_name_the_job() -> None:
    driver = Observed(JobConfig(name="api", command=("true",), source=Path("/x.yaml")))
    driver.send(ev.Start())
    assert {json.loads(event.line)["job"] for event in driver.history.since(0)[1]} == {"api"}


OVERLAP = replace(
    BASE,
    ready=Readiness("notify"),
    ready_timeout=5.0,
    restart_mode=RestartMode.OVERLAP,
    debounce=0.1,
)


def overlapping_after_a_change() -> Observed:
    driver = Observed(OVERLAP)
    driver.send(ev.Start())
    driver.ready()
    driver.send(ev.ChangeSeen("/srv/app.py"))
    driver.advance(0.2)  # the new child runs beside the old one, not ready yet
    return driver


def test_an_overlap_restart_is_one_restart_event_once_the_new_child_took_over() -> None:
    driver = overlapping_after_a_change()
    assert driver.recorded()[-1] == ("state",)  # nothing told until the outcome is known
    driver.ready()
    assert driver.recorded("reason", "overlap", "ok", "pid", "old_pid")[2:] == [
        ("restart", "change", True, True, 102, 101)
    ]
    assert driver.job.restarts == 1


def test_a_failed_overlap_is_a_restart_event_saying_why_and_the_old_child_runs_on() -> None:
    driver = overlapping_after_a_change()
    driver.advance(6)  # not ready within ready_timeout
    assert driver.recorded("reason", "ok", "pid", "failure")[2:] == [
        ("restart", "change", False, 101, "ready-timeout")
    ]
    (last,) = driver.recorded("failure_detail")[-1:]
    assert "not ready within 5s; pid 101 keeps running" in last[1]


def test_health_watchdog_oom_and_ready_timeout_are_restart_reasons() -> None:
    health = HealthCheck(Probe("tcp", "127.0.0.1", 8000))
    cases: list[tuple[JobConfig, Any, str]] = [
        (replace(BASE, health=health), ev.HealthFailed("refused"), "health"),
        (replace(BASE, watchdog=1.0), None, "watchdog"),
        (BASE, ev.Exited(-9, None, True), "oom-killed"),
        (replace(BASE, ready=Readiness("notify"), ready_timeout=5.0), None, "ready-timeout"),
    ]
    for config, event, reason in cases:
        driver = Observed(config)
        driver.send(ev.Start())
        if isinstance(event, ev.Exited):
            driver.children -= 1
            driver.send(event)
        elif event is not None:
            driver.send(event)
        else:
            driver.advance(5.5)  # the watchdog, or the ready timer, fires
        if driver.children:
            driver.child_exits(-15)
        driver.advance(5)  # past the backoff
        restarts = [kind for kind in driver.recorded("reason") if kind[0] == "restart"]
        assert restarts[:1] == [("restart", reason)], (reason, driver.recorded("to", "reason"))


def test_holds_and_releases_name_the_holder_and_count_the_changes() -> None:
    history = History()
    events = JobEvents(history, Observed().job, "web")
    lock = "/srv/.git/rebase-merge"
    events.held(None, lock, 1)
    events.held(lock, "watchctl", 3)
    events.held("watchctl", None, 5)
    bodies = [json.loads(event.line) for event in history.since(0)[1]]
    told = [(b["kind"], b["held_by"], b.get("previous"), b["count"]) for b in bodies]
    assert told == [
        ("hold", lock, None, 1),
        ("hold", "watchctl", lock, 3),
        ("release", "watchctl", None, 5),
    ]


def test_a_fallback_after_start_is_an_event_with_its_reason() -> None:
    history = History()
    events = JobEvents(history, Observed().job, "web")
    events.fell_back("poll (inotify watch limit reached)")
    (fallback,) = (json.loads(event.line) for event in history.since(0)[1])
    assert (fallback["kind"], fallback["reason"], fallback["at_start"]) == (
        "fallback",
        "inotify watch limit reached",
        False,
    )

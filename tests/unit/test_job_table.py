"""The job table, walked as a table; and random input sequences through the one driver."""

from __future__ import annotations

import signal
from collections.abc import Callable
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers.job_driver import BASE, Driver
from watchd.config.model import (
    ChangeAction,
    HealthCheck,
    JobConfig,
    OnChange,
    Probe,
    Readiness,
    RestartMode,
    RestartPolicy,
)
from watchd.supervise import events as ev
from watchd.supervise.job import Job
from watchd.supervise.states import (
    IGNORED,
    SERVING,
    TABLE,
    WITH_CHILD,
    WORDS,
    IllegalTransition,
    State,
    StatusWord,
)
from watchd.supervise.steps import STEPS

S = State
BUILDS = replace(BASE, before_restart=("make",))
READIES = replace(BASE, ready=Readiness("notify"), ready_timeout=5.0)
OVERLAPS = replace(READIES, restart_mode=RestartMode.OVERLAP)
SPAWN_ANSWERS = (ev.SuccessorSpawned, ev.SuccessorSpawnFailed)

# One input of each kind.
SAMPLES: list[ev.Input] = [
    ev.Start(),
    ev.Stop(),
    ev.Restart(),
    ev.ChangeSeen("/srv/app/x.py"),
    ev.DebounceDue(),
    ev.BackoffElapsed(),
    ev.Spawned(999),
    ev.SpawnFailed("No such file or directory"),
    ev.Exited(1),
    ev.BeforeRestartDone(True, "exit status 0"),
    ev.Ready(),
    ev.ReadyTimeout(),
    ev.SuccessorSpawned(998),
    ev.SuccessorSpawnFailed("No such file or directory"),
    ev.SuccessorExited(1),
    ev.HealthFailed("connection refused"),
    ev.WatchdogPing(),
    ev.WatchdogExpired(),
]
KINDS = [type(sample) for sample in SAMPLES]


def _reach(state: State, sample: ev.Input | None = None) -> Driver:
    """A driver whose job is in *state*, reached the way a user would get it there (an
    overlap's spawn left unanswered when *sample* is its answer)."""
    configs = {
        S.BUILDING: BUILDS,
        S.FAILED: replace(BASE, start_limit_burst=1),
        S.AWAITING_READY: READIES,
        S.FAILING: READIES,
        S.OVERLAPPING: OVERLAPS,
    }
    driver = Driver(configs.get(state, BASE))
    if state is S.STARTING:
        driver.answer_spawns = False
    if state is not S.STOPPED:
        driver.send(ev.Start())

    def overlap() -> None:
        driver.ready()
        driver.answer_spawns = not isinstance(sample, SPAWN_ANSWERS)
        driver.send(ev.Restart())

    def change_settles() -> None:
        driver.send(ev.ChangeSeen("/a.c"))
        driver.advance(1)

    steps: dict[State, Callable[[], None]] = {
        S.BUILDING: change_settles,
        S.RESTARTING: lambda: driver.send(ev.Restart()),
        S.STOPPING: lambda: driver.send(ev.Stop()),
        S.BACKOFF: lambda: driver.child_exits(1),
        S.EXITED: lambda: driver.child_exits(0),
        S.FAILED: lambda: driver.child_exits(1),
        S.FAILING: lambda: driver.advance(10),
        S.OVERLAPPING: overlap,
    }
    if state in steps:
        steps[state]()
    assert driver.job.state is state
    return driver


def _can_happen(state: State, kind: type[ev.Input]) -> bool:
    """Whether the world can send *kind* while the job is in *state*."""
    if kind in (ev.Spawned, ev.SpawnFailed):
        return state is S.STARTING  # only as the answer to Spawn
    if kind in (*SPAWN_ANSWERS, ev.SuccessorExited):
        return state is S.OVERLAPPING  # only while an overlap's new child is wanted
    if kind is ev.Exited:
        return state in WITH_CHILD
    if state is S.STARTING:
        return kind not in (ev.Stop, ev.Restart)  # a spawn is answered before any request
    return True


def _snapshot(job: Job) -> tuple[object, ...]:
    return (
        job.state,
        job.pid,
        job.successor_pid,
        job.start_error,
        job.starts,
        job.last_trigger,
        job.next_trigger,
        job.follow_up,
        job.backoff,
        tuple(job.failure_times),
        job.burst.deadline(),
    )


def test_every_row_names_a_step_and_nothing_is_both_a_row_and_ignored() -> None:
    assert not (TABLE.keys() & IGNORED)
    assert {row.step for row in TABLE.values()} <= STEPS.keys()
    assert set(WORDS) == set(State)
    assert set(WORDS.values()) == set(StatusWord)


def test_exactly_the_pairs_the_world_can_send_are_in_the_table_or_ignored() -> None:
    for state in State:
        for kind in KINDS:
            listed = (state, kind) in TABLE or (state, kind) in IGNORED
            assert listed == _can_happen(state, kind), (state, kind.__name__)


@pytest.mark.parametrize("state", list(State))
@pytest.mark.parametrize("sample", SAMPLES, ids=lambda sample: type(sample).__name__)
def test_each_input_in_each_state_goes_where_the_table_says(state: State, sample: ev.Input) -> None:
    driver = _reach(state, sample)
    job = driver.job
    key = (state, type(sample))
    if key in TABLE:
        actions = job.handle(sample, driver.clock())
        assert job.state in TABLE[key].targets
        answered = (ev.Spawn, ev.SpawnSuccessor)
        if any(isinstance(action, answered) for action in actions):
            assert isinstance(actions[-1], answered), "a spawn is answered: it comes last"
    elif key in IGNORED:
        before = _snapshot(job)
        assert job.handle(sample, driver.clock()) == []
        assert _snapshot(job) == before
    else:
        before = _snapshot(job)
        with pytest.raises(IllegalTransition):
            job.handle(sample, driver.clock())
        assert _snapshot(job) == before, "a refused input changed the job"


def test_a_running_job_refuses_a_second_spawn_result() -> None:
    driver = _reach(S.RUNNING)
    with pytest.raises(IllegalTransition, match="Spawned is not expected while running"):
        driver.send(ev.Spawned(4242))
    assert driver.job.state is S.RUNNING and driver.job.pid == 101


# ---- random sequences ---------------------------------------------------------------

CONFIGS = [
    BASE,
    BUILDS,
    replace(BASE, on_change=OnChange(ChangeAction.SIGNAL, signal.SIGHUP)),
    replace(BASE, restart=RestartPolicy.ALWAYS, start_limit_burst=3),
    replace(BASE, restart=RestartPolicy.NEVER),
    READIES,
    replace(OVERLAPS, before_restart=("make",)),
    replace(BASE, restart_mode=RestartMode.OVERLAP, watchdog=3.0),
    replace(
        OVERLAPS,
        watchdog=2.0,
        health=HealthCheck(Probe("tcp", "127.0.0.1", 8000)),
        start_limit_burst=3,
    ),
]

steps = st.one_of(
    st.sampled_from([ev.Start(), ev.Stop(), ev.Restart()]),
    st.sampled_from(["/a.py", "/b.py", "/c.py"]).map(ev.ChangeSeen),
    st.sampled_from([0, 1, 3, -9, -15]).map(lambda code: ("exit", code)),
    st.just(("exec-failed", 127)),
    st.booleans().map(lambda ok: ("build", ok)),
    st.sampled_from([ev.Ready(), ev.HealthFailed("refused"), ev.WatchdogPing()]),
    st.sampled_from([0, 1, -9]).map(lambda code: ("successor-exit", code)),
    st.floats(0.0, 40.0).map(lambda seconds: ("advance", seconds)),
)


def _play(driver: Driver, step: object) -> None:
    match step:
        case ("advance", float(seconds)):
            driver.advance(seconds)
        case ("exit", int(code)):
            if driver.children:
                driver.child_exits(code)
        case ("exec-failed", int(code)):
            if driver.children:
                driver.child_exits(code, "Permission denied: '/srv/app/server'")
        case ("build", bool(ok)):
            if driver.building:
                driver.build_ends(ok)
        case ("successor-exit", int(code)):
            if driver.successors:
                driver.successor_exits(code)
        case _:
            driver.send(step)  # type: ignore[arg-type]


def _check(driver: Driver) -> None:
    job = driver.job
    assert driver.children <= 1, "two children at once"
    assert driver.successors <= 1, "two new children at once"
    assert (job.pid is not None) == (driver.children == 1) == (job.state in WITH_CHILD)
    overlapping = job.state is S.OVERLAPPING
    assert (job.successor_pid is not None) == (driver.successors == 1) == overlapping
    waiting = job.state in (S.AWAITING_READY, S.OVERLAPPING)
    assert (ev.Timer.READY in driver.timers) == waiting, "a ready timer without a wait"
    if ev.Timer.WATCHDOG in driver.timers:
        assert job.config.watchdog is not None and job.state in SERVING, "a stale watchdog"
    if job.config.watchdog is not None and job.state in (S.RUNNING, S.BUILDING):
        assert ev.Timer.WATCHDOG in driver.timers, "a serving child nobody watches"
    assert driver.spawns == job.starts and job.restarts == max(driver.spawns - 1, 0)
    assert driver.building == (job.state is S.BUILDING)
    assert job.state is not S.STARTING, "the spawn was answered: never left starting"
    if job.settled:
        assert job.word is StatusWord.RUNNING


@settings(max_examples=300)
@given(st.sampled_from(CONFIGS), st.lists(steps, max_size=60))
def test_any_sequence_keeps_one_child_strict_order_and_one_count(
    config: JobConfig, sequence: list[object]
) -> None:
    driver = Driver(config)
    driver.send(ev.Start(ev.TriggerKind.CONFIG, "job added"))
    for step in sequence:
        _play(driver, step)
        _check(driver)
    # Whatever happened, a stop ends with no child, no timer and no build left.
    driver.send(ev.Stop())
    if driver.children:
        driver.child_exits(-15)
    assert driver.job.state is S.STOPPED and not driver.timers and not driver.building
    assert not driver.successors

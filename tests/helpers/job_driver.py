"""A job driven through the one driver with a virtual clock: no processes, no sleeps."""

from __future__ import annotations

import signal
from pathlib import Path

from watchd.config.model import JobConfig
from watchd.supervise import events as ev
from watchd.supervise.job import Job, drive
from watchd.supervise.states import StatusWord

BASE = JobConfig(name="web", command=("true",), source=Path("/etc/watchd/jobs.d/web.yaml"))


class Driver:
    """Plays the runner's part through the one driver, against a virtual clock: a spawn
    succeeds at once (or fails with ``spawn_error``); everything else is recorded."""

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
        self.building = False  # a before_restart step runs
        self.spawn_error: str | None = None
        self.answer_spawns = True  # False: Spawn stays unanswered (the job stays starting)
        self.children = 0  # the job's own child, alive, as far as the job was told
        self.successors = 0  # the new child of an overlap, before it takes over
        self.retiring = 0  # old children stopped after a hand-over, or dropped successors
        self.awaiting: list[int] = []  # PIDs whose readiness was asked for, in order
        self.health_watched: list[int] = []

    def word(self) -> StatusWord:
        """The state as a user sees it."""
        return self.job.word

    def send(self, event: ev.Input) -> None:
        self.actions += drive(self.job, event, self.clock, self.perform)

    def clock(self) -> ev.Moment:
        return ev.Moment(self.now, self.now + 1.7e9)

    def perform(self, action: ev.Action) -> ev.Input | None:
        match action:
            case ev.Spawn():
                assert self.children == 0, "a new child was asked for before the old one was gone"
                self.spawns += 1
                if not self.answer_spawns:
                    return None
                if self.spawn_error:
                    return ev.SpawnFailed(self.spawn_error)
                self.next_pid += 1
                self.children += 1
                return ev.Spawned(self.next_pid)
            case (
                ev.SpawnSuccessor()
                | ev.HandOver()
                | ev.DropSuccessor()
                | ev.Promote()
                | ev.AwaitReady()
                | ev.WatchHealth()
            ):
                return self.overlap(action)
            case ev.StopChild():
                self.stops += 1
            case ev.SignalChild():
                self.signals.append(action.signal)
            case ev.RunBeforeRestart():
                assert not self.building, "a second before_restart while one runs"
                self.builds += 1
                self.building = True
            case ev.CancelBeforeRestart():
                self.building = False
            case ev.SetTimer():
                self.timers[action.timer] = action.at
            case ev.CancelTimer():
                self.timers.pop(action.timer, None)
        return None

    def overlap(self, action: ev.Action) -> ev.Input | None:
        """The actions of overlap restarts and of readiness and health checks."""
        match action:
            case ev.SpawnSuccessor():
                assert self.children == 1 and self.successors == 0, "an overlap without a child"
                self.spawns += 1
                if not self.answer_spawns:
                    return None
                if self.spawn_error:
                    return ev.SuccessorSpawnFailed(self.spawn_error)
                self.next_pid += 1
                self.successors += 1
                return ev.SuccessorSpawned(self.next_pid)
            case ev.HandOver():
                assert self.successors == 1 and self.children == 1
                self.successors, self.retiring = 0, self.retiring + 1
                self.stops += 1
            case ev.DropSuccessor():
                assert self.successors == 1
                self.successors, self.retiring = 0, self.retiring + 1
            case ev.Promote():
                assert self.successors == 1 and self.children == 0
                self.successors, self.children = 0, 1
            case ev.AwaitReady(pid=pid):
                self.awaiting.append(pid)
            case ev.WatchHealth(pid=pid):
                self.health_watched.append(pid)
        return None

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
            self.send(timer.fired())
        self.now = end

    def child_exits(self, code: int, exec_error: str | None = None) -> None:
        self.children -= 1
        self.send(ev.Exited(code, exec_error))

    def successor_exits(self, code: int, exec_error: str | None = None) -> None:
        self.successors -= 1
        self.send(ev.SuccessorExited(code, exec_error))

    def ready(self, detail: str = "READY=1") -> None:
        self.send(ev.Ready(detail))

    def build_ends(self, ok: bool) -> None:
        assert self.building
        self.building = False
        self.send(ev.BeforeRestartDone(ok, "exit status 0" if ok else "exit status 2"))

"""Carries out one job's actions on the event loop: spawn, stop, signal, timers, watches."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from watchd.config.model import JobConfig
from watchd.control.status import JobStatus, TriggerRecord
from watchd.log import JobOutput
from watchd.supervise import events as ev
from watchd.supervise.cgroup import Hierarchy
from watchd.supervise.containment import JobContainment
from watchd.supervise.job import Job, drive
from watchd.supervise.output import OutputBuffer
from watchd.supervise.process import ChildProcess, SpawnSpec
from watchd.supervise.sockets import HeldSockets
from watchd.supervise.states import State
from watchd.text import counted
from watchd.watch.base import Change
from watchd.watch.choose import WatchHub
from watchd.watch.jobwatch import JobWatch

log = logging.getLogger("watchd.job")

_LEVELS = {
    ev.Level.INFO: logging.INFO,
    ev.Level.WARNING: logging.WARNING,
    ev.Level.ERROR: logging.ERROR,
}


class JobRunner:
    def __init__(
        self,
        config: JobConfig,
        hub: WatchHub,
        on_state_change: Callable[[], None] | None = None,
        sockets: HeldSockets | None = None,
        containment: Hierarchy | str = "not set up",
    ) -> None:
        self.config = config
        self.containment = JobContainment(config, containment)
        self.sockets = sockets  # held by the daemon across this runner's restarts
        self._on_state_change = on_state_change
        self.job = Job(config)
        self.output = OutputBuffer(config.log_lines)
        self._job_output = JobOutput(config.name)
        self._hub = hub
        self._loop = asyncio.get_running_loop()
        self._child: ChildProcess | None = None
        self._timers: dict[ev.Timer, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._build: asyncio.Task[None] | None = None  # the before_restart step under way
        output = config.output if config.output not in ("log", "null") else None
        self.watch = JobWatch(
            config.name,
            config.watch,
            hub,
            self._on_changes,
            own_files=() if output is None else (output,),
            settle_max=config.debounce_max,
        )
        self._state_changed = asyncio.Event()

    @property
    def name(self) -> str:
        return self.config.name

    # ---- lifecycle ------------------------------------------------------------------

    async def arm(self) -> None:
        """Set up the job's watches; returns once they are armed."""
        if not self.config.watch.paths:
            return
        await self.watch.arm()
        watched = counted(self.watched_paths(), "path")
        log.info("%s: watching %s (%s)", self.name, watched, self.backend)

    def start(self, detail: str = "job started") -> None:
        self.handle(ev.Start(ev.TriggerKind.CONFIG, detail))

    async def shutdown(self, detail: str = "watchd stopping") -> None:
        """Stop the child (and its group) and release the watches."""
        self.handle(ev.Stop(detail))
        await self.wait_until(lambda: self._child is None and self.job.state is State.STOPPED)
        await self.watch.close()
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.containment.close()

    async def wait_until(self, predicate: Any) -> None:
        while not predicate():
            self._state_changed.clear()
            await self._state_changed.wait()

    # ---- status ---------------------------------------------------------------------

    @property
    def backend(self) -> str | None:
        return self.watch.backend

    def watched_paths(self) -> int:
        return self.watch.watched_paths()

    def status(self) -> JobStatus:
        job = self.job
        trigger = job.last_trigger
        return JobStatus(
            name=self.name,
            state=job.word,
            pid=job.pid,
            uptime=job.uptime(self._loop.time()),
            restarts=job.restarts,
            last_trigger=None
            if trigger is None
            else TriggerRecord.at_time(trigger.kind, trigger.detail, trigger.at),
            backend=self.backend,
            watched_paths=self.watched_paths(),
            sockets=() if self.sockets is None else tuple(self.sockets.addresses()),
            **self.containment.status(),
            held_by=self.watch.held_by,
        )

    # ---- inputs ---------------------------------------------------------------------

    def handle(self, event: ev.Input) -> None:
        before = self.job.state
        drive(self.job, event, self._clock, self._perform)
        self._state_changed.set()
        if self.job.state is not before and self._on_state_change is not None:
            self._on_state_change()

    def _on_changes(self, changes: Sequence[Change]) -> None:
        for change in changes:
            self.handle(ev.ChangeSeen(change.path))

    # ---- actions --------------------------------------------------------------------

    def _clock(self) -> ev.Moment:
        return ev.Moment(self._loop.time(), time.time())

    def _perform(self, action: ev.Action) -> ev.Input | None:
        match action:
            case ev.Spawn():
                return self._spawn()
            case ev.StopChild(signal=sig, timeout=timeout):
                if self._child is not None:
                    self._child.begin_stop(sig, timeout)
            case ev.SignalChild(signal=sig):
                if self._child is not None:
                    self._child.signal_leader(sig)
            case ev.RunBeforeRestart():
                self._build = self._spawn_task(self._run_before_restart())
            case ev.CancelBeforeRestart():
                if self._build is not None:
                    self._build.cancel()
                    self._build = None
            case ev.SetTimer(timer=timer, at=at):
                self._cancel_timer(timer)
                self._timers[timer] = self._loop.call_at(at, self._timer_fired, timer)
            case ev.CancelTimer(timer=timer):
                self._cancel_timer(timer)
            case ev.Notice(level=level, message=message):
                log.log(_LEVELS[level], "%s: %s", self.name, message)
        return None

    def _spawn(self) -> ev.Input:
        try:
            spec = self._spawn_spec(self.config.command)
            if self.sockets is not None:
                newly = not self.sockets.bound
                spec = replace(spec, fds=self.sockets.fds(), fd_names=self.sockets.names())
                if newly:
                    log.info("%s: holding %s", self.name, ", ".join(self.sockets.addresses()))
            cgroup = self.containment.child_cgroup()
            if cgroup is not None:
                spec = replace(spec, cgroup=cgroup.path)
            child = ChildProcess.spawn(spec, self._on_line)
        except (OSError, subprocess.SubprocessError, KeyError, ValueError) as error:
            return ev.SpawnFailed(_spawn_error(error))
        self._child = child
        self._job_output.pid = child.pid
        log.info("%s: started pid %d", self.name, child.pid)
        self._spawn_task(self._supervise(child))
        return ev.Spawned(child.pid)

    async def _supervise(self, child: ChildProcess) -> None:
        oom_before = self.containment.oom_kills()
        # Returns once the child's whole cgroup is empty: only then may the next one start.
        returncode = await child.finish(self.config.stop_signal, self.config.stop_timeout)
        self._child = None
        if child.cgroup is not None:
            child.cgroup.remove()
        oom = self.containment.oom_kills() > oom_before
        error = None if child.exec_error is None else _spawn_error(child.exec_error)
        self.handle(ev.Exited(returncode, error, oom))

    async def _run_before_restart(self) -> None:
        done = await self._before_restart()
        self._build = None  # before handle: its answer may start the next step
        self.handle(done)

    async def _before_restart(self) -> ev.BeforeRestartDone:
        config = self.config
        try:
            spec = self._spawn_spec(config.before_restart or ())
            cgroup = self.containment.child_cgroup()  # a build's daemons go with it too
            if cgroup is not None:
                spec = replace(spec, cgroup=cgroup.path)
            child = ChildProcess.spawn(spec, JobOutput(self.name, "before_restart").line)
        except (OSError, subprocess.SubprocessError, KeyError, ValueError) as error:
            return ev.BeforeRestartDone(False, _spawn_error(error))
        try:
            return await self._build_result(child)
        finally:
            if child.cgroup is not None:
                child.cgroup.remove()  # empty by now: every way out waited for that

    async def _build_result(self, child: ChildProcess) -> ev.BeforeRestartDone:
        config = self.config
        try:
            returncode = await asyncio.wait_for(child.wait(), config.before_restart_timeout)
        except TimeoutError:
            await self._stop(child)
            return ev.BeforeRestartDone(False, "timed out")
        except asyncio.CancelledError:
            # No longer wanted (the job stops, or its child is gone): the step goes too.
            await self._stop(child)
            raise
        returncode = await child.finish(config.stop_signal, config.stop_timeout)
        if child.exec_error is not None:
            return ev.BeforeRestartDone(False, _spawn_error(child.exec_error))
        return ev.BeforeRestartDone(returncode == 0, ev.describe_exit(returncode))

    async def _stop(self, child: ChildProcess) -> None:
        """Stop *child*'s group and reap it, even if asked to stop waiting meanwhile."""
        child.begin_stop(self.config.stop_signal, self.config.stop_timeout)
        reaped = asyncio.ensure_future(
            child.finish(self.config.stop_signal, self.config.stop_timeout)
        )
        cancelled = False
        while not reaped.done():
            try:
                await asyncio.shield(reaped)
            except asyncio.CancelledError:
                cancelled = True
        reaped.result()
        if cancelled:
            raise asyncio.CancelledError

    def _spawn_spec(self, argv: tuple[str, ...]) -> SpawnSpec:
        config = self.config
        env = dict(config.env)
        env.setdefault("WATCHD_JOB", config.name)
        return SpawnSpec(argv, config.cwd, env, config.user, config.group, config.output)

    def _on_line(self, line: str) -> None:
        self.output.append(line)
        self._job_output.line(line)

    def _timer_fired(self, timer: ev.Timer) -> None:
        self._timers.pop(timer, None)
        self.handle(timer.fired())

    def _cancel_timer(self, timer: ev.Timer) -> None:
        handle = self._timers.pop(timer, None)
        if handle is not None:
            handle.cancel()

    def _spawn_task(self, coro: Any) -> asyncio.Task[Any]:
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        with contextlib.suppress(asyncio.CancelledError):
            error = task.exception()
            if error is not None:
                log.error("%s: internal error", self.name, exc_info=error)


def _spawn_error(error: BaseException) -> str:
    if isinstance(error, KeyError):
        return f"unknown user or group {error.args[0]!r}" if error.args else "unknown user"
    if isinstance(error, OSError) and error.strerror:
        target = f": {error.filename!r}" if error.filename else ""
        return f"{error.strerror}{target}"
    return str(error)

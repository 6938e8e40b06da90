"""Carries out one job's actions on the event loop: spawn, stop, signal, timers, watches."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from watchd.config.model import JobConfig
from watchd.control.status import HealthRecord, JobStatus, TriggerRecord
from watchd.log import JobOutput
from watchd.observe.history import History
from watchd.observe.jobevents import JobEvents
from watchd.supervise import events as ev
from watchd.supervise import probes
from watchd.supervise.cgroup import Hierarchy
from watchd.supervise.containment import JobContainment
from watchd.supervise.job import Job, drive
from watchd.supervise.notify import Message, NotifySocket
from watchd.supervise.output import OutputBuffer
from watchd.supervise.process import ChildProcess, SpawnSpec
from watchd.supervise.sockets import HeldSockets
from watchd.supervise.states import SERVING, State
from watchd.text import counted
from watchd.watch.base import Change
from watchd.watch.jobwatch import WatchFactory

log = logging.getLogger("watchd.job")

# A readiness probe is tried again after this, doubling up to the cap, until it passes.
PROBE_RETRY_FIRST = 0.05
PROBE_RETRY_MAX = 1.0
PROBE_TIMEOUT = 2.0  # each try, at most
# STATUS= text kept per child, at most (a line in the status table).
MAX_STATUS_TEXT = 200
# Senders outside the job are logged once each, up to this many per job.
MAX_LOGGED_STRANGERS = 20

_LEVELS = {
    ev.Level.INFO: logging.INFO,
    ev.Level.WARNING: logging.WARNING,
    ev.Level.ERROR: logging.ERROR,
}


class JobRunner:
    def __init__(
        self,
        config: JobConfig,
        watch_for: WatchFactory,
        on_state_change: Callable[[], None] | None = None,
        sockets: HeldSockets | None = None,
        containment: Hierarchy | str = "not set up",
        *,
        history: History | None = None,
    ) -> None:
        self.containment = JobContainment(config, containment)
        self.sockets = sockets  # held by the daemon across this runner's restarts
        self._on_state_change = on_state_change
        self.job = Job(config)
        self._events = JobEvents(history or History(), self.job, config.name)
        self.output = OutputBuffer(config.log_lines)
        self._job_output = JobOutput(config.name)
        self._loop = asyncio.get_running_loop()
        self._child: ChildProcess | None = None
        self._successor: ChildProcess | None = None  # an overlap's new child, until ready
        self._retiring: set[ChildProcess] = set()  # old children stopping after a hand-over
        self._status_text: dict[int, str] = {}  # the last STATUS= of each child, by PID
        self._health: HealthRecord | None = None  # the serving child's checks so far
        self._strangers: set[int] = set()
        self._notify: NotifySocket | None = None
        if config.ready.kind == "notify" or config.watchdog is not None:
            self._notify = NotifySocket(self._on_notify)
        self._timers: dict[ev.Timer, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._build: asyncio.Task[None] | None = None  # the before_restart step under way
        self.watch = watch_for(config, self._on_changes)
        self.watch.on_hold = self._events.held
        self.watch.on_fallback = self._events.fell_back
        self._state_changed = asyncio.Event()

    @property
    def config(self) -> JobConfig:
        """The job's definition: the job's own, so the two cannot disagree."""
        return self.job.config

    @config.setter
    def config(self, config: JobConfig) -> None:
        self.job.config = config

    @property
    def name(self) -> str:
        return self.config.name

    # ---- lifecycle ------------------------------------------------------------------

    async def arm(self) -> None:
        """Set up the job's watches; returns once they are armed."""
        if not self.config.watch.paths:
            return
        await self.watch.arm()
        self._events.armed(self.backend, self.config.watch.backend)
        watched = counted(self.watched_paths(), "path")
        log.info("%s: watching %s (%s)", self.name, watched, self.backend)

    def start(self, detail: str = "job started") -> None:
        self.handle(ev.Start(ev.TriggerKind.CONFIG, detail))

    async def shutdown(self, detail: str = "watchd stopping") -> int | None:
        """Stop the child (and its group) and release the watches; return the stopped
        child's return code (None if no child was running)."""
        stopped = self._child
        self.handle(ev.Stop(detail))
        await self.wait_until(
            lambda: (
                self._child is None
                and self._successor is None
                and not self._retiring
                and self.job.state is State.STOPPED
            )
        )
        if self._notify is not None:
            self._notify.close()
        await self.watch.close()
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.containment.close()
        return None if stopped is None else stopped.returncode

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
            ready=job.ready,
            status_text=None if job.pid is None else self._status_text.get(job.pid),
            health=self._health,
        )

    # ---- inputs ---------------------------------------------------------------------

    def handle(self, event: ev.Input) -> None:
        before = self.job.state
        self._events.handling(event)
        drive(self.job, event, self._clock, self._perform)
        self._events.settled()
        self._state_changed.set()
        if self.job.state is not before and self._on_state_change is not None:
            self._on_state_change()

    def _on_changes(self, changes: Sequence[Change]) -> None:
        self._events.changes(changes)
        for change in changes:
            self.handle(ev.ChangeSeen(change.path))

    # ---- actions --------------------------------------------------------------------

    def _clock(self) -> ev.Moment:
        return ev.Moment(self._loop.time(), time.time())

    def _perform(self, action: ev.Action) -> ev.Input | None:
        self._events.acting(action)
        match action:
            case ev.Spawn():
                return self._spawn()
            case ev.SpawnSuccessor() | ev.HandOver() | ev.DropSuccessor() | ev.Promote():
                return self._overlap(action)
            case ev.AwaitReady() | ev.WatchHealth():
                self._watch(action)
            case ev.RunBeforeRestart() | ev.CancelBeforeRestart():
                self._before_restart_action(action)
            case ev.SetTimer() | ev.CancelTimer():
                self._set_timer(action)
            case ev.StopChild(signal=sig, timeout=timeout):
                if self._child is not None:
                    self._child.begin_stop(sig, timeout)
            case ev.SignalChild(signal=sig):
                if self._child is not None:
                    self._child.signal_leader(sig)
            case ev.Notice(level=level, message=message):
                log.log(_LEVELS[level], "%s: %s", self.name, message)
        return None

    def _watch(self, action: ev.AwaitReady | ev.WatchHealth) -> None:
        if isinstance(action, ev.WatchHealth):
            self._spawn_task(self._watch_health(action.pid))
        elif self.config.ready.kind == "probe":  # notify: READY=1 comes by itself
            self._spawn_task(self._probe_ready(action.pid))

    def _before_restart_action(self, action: ev.RunBeforeRestart | ev.CancelBeforeRestart) -> None:
        if isinstance(action, ev.RunBeforeRestart):
            self._build = self._spawn_task(self._run_before_restart())
        elif self._build is not None:
            self._build.cancel()
            self._build = None

    def _set_timer(self, action: ev.SetTimer | ev.CancelTimer) -> None:
        self._cancel_timer(action.timer)
        if isinstance(action, ev.SetTimer):
            self._timers[action.timer] = self._loop.call_at(
                action.at, self._timer_fired, action.timer
            )

    def _overlap(
        self, action: ev.SpawnSuccessor | ev.HandOver | ev.DropSuccessor | ev.Promote
    ) -> ev.Input | None:
        match action:
            case ev.SpawnSuccessor():
                return self._spawn(successor=True)
            case ev.HandOver(signal=sig, timeout=timeout):
                old, self._child, self._successor = self._child, self._successor, None
                if old is not None:
                    self._retire(old, sig, timeout)
                self._job_output.pid = None if self._child is None else self._child.pid
            case ev.DropSuccessor(signal=sig, timeout=timeout):
                dropped, self._successor = self._successor, None
                if dropped is not None:
                    self._retire(dropped, sig, timeout)
            case ev.Promote():
                self._child, self._successor = self._successor, None
                self._job_output.pid = None if self._child is None else self._child.pid
        return None

    def _spawn(self, successor: bool = False) -> ev.Input:
        try:
            child = ChildProcess.spawn(self._child_spec(), self._on_line)
        except (OSError, subprocess.SubprocessError, KeyError, ValueError) as error:
            reason = _spawn_error(error)
            return ev.SuccessorSpawnFailed(reason) if successor else ev.SpawnFailed(reason)
        self._spawn_task(self._supervise(child))
        if successor:
            self._successor = child
            old = "-" if self._child is None else self._child.pid
            log.info("%s: started pid %d beside pid %s", self.name, child.pid, old)
            return ev.SuccessorSpawned(child.pid)
        self._child = child
        self._job_output.pid = child.pid
        log.info("%s: started pid %d", self.name, child.pid)
        return ev.Spawned(child.pid)

    def _child_spec(self) -> SpawnSpec:
        config = self.config
        spec = self._spawn_spec(config.command)
        env = dict(spec.env)
        if self._notify is not None:
            env["NOTIFY_SOCKET"] = self._notify.address
        pid_env: tuple[str, ...] = ()
        if config.watchdog is not None:
            env["WATCHDOG_USEC"] = str(round(config.watchdog * 1_000_000))
            pid_env = ("WATCHDOG_PID",)
        spec = replace(spec, env=env, pid_env=pid_env, kill_mode=config.kill_mode)
        if self.sockets is not None:
            newly = not self.sockets.bound
            spec = replace(spec, fds=self.sockets.fds(), fd_names=self.sockets.names())
            if newly:
                log.info("%s: holding %s", self.name, ", ".join(self.sockets.addresses()))
        cgroup = self.containment.child_cgroup()  # one per child: overlaps have two
        if cgroup is not None:
            spec = replace(spec, cgroup=cgroup.path)
        return spec

    async def _supervise(self, child: ChildProcess) -> None:
        oom_before = self.containment.oom_kills()
        # Returns once the child's whole cgroup is empty: only then may the next one start.
        returncode = await child.finish(self.config.stop_signal, self.config.stop_timeout)
        if child.cgroup is not None:
            child.cgroup.remove()
        oom = self.containment.oom_kills() > oom_before
        self._status_text.pop(child.pid, None)
        error = None if child.exec_error is None else _spawn_error(child.exec_error)
        if child is self._child:
            self._child = None
            self.handle(ev.Exited(returncode, error, oom))
        elif child is self._successor:
            self._successor = None
            self.handle(ev.SuccessorExited(returncode, error))
        else:
            self._retiring.discard(child)
            how = ev.describe_exit(returncode)
            log.info("%s: old child pid %d stopped (%s)", self.name, child.pid, how)
            self._state_changed.set()

    def _retire(self, child: ChildProcess, sig: Any, timeout: float) -> None:
        """Stop a child that is no longer the job's; its exit is only logged."""
        self._retiring.add(child)
        child.begin_stop(sig, timeout)

    # ---- readiness and health -------------------------------------------------------

    def _awaiting(self, pid: int) -> bool:
        """Whether the job waits for child *pid* to get ready."""
        job = self.job
        if job.state is State.AWAITING_READY:
            return job.pid == pid
        return job.state is State.OVERLAPPING and job.successor_pid == pid

    async def _probe_ready(self, pid: int) -> None:
        probe = self.config.ready.probe
        assert probe is not None
        delay = PROBE_RETRY_FIRST
        while self._awaiting(pid):
            timeout = min(PROBE_TIMEOUT, self.config.ready_timeout)
            reason = await probes.check(probe, timeout, self._run_probe_command)
            if not self._awaiting(pid):
                return
            if reason is None:
                self.handle(ev.Ready(f"{probe.describe()} passed"))
                return
            log.debug("%s: not ready yet (%s: %s)", self.name, probe.describe(), reason)
            await asyncio.sleep(delay)
            delay = min(delay * 2, PROBE_RETRY_MAX)

    async def _watch_health(self, pid: int) -> None:
        health = self.config.health
        assert health is not None
        failures = 0
        self._health = HealthRecord()

        def serving() -> bool:
            return self.job.pid == pid and self.job.state in SERVING

        while serving():
            await asyncio.sleep(health.interval)
            if self.job.state is State.OVERLAPPING:
                continue  # its replacement is on the way
            if not serving():
                return
            reason = await probes.check(health.probe, health.timeout, self._run_probe_command)
            if not serving():
                return
            failures = 0 if reason is None else failures + 1
            self._health = HealthRecord(reason is None, failures, reason)
            if reason is None:
                continue
            log.warning(
                "%s: health check failed (%d of %d): %s: %s",
                self.name,
                failures,
                health.retries,
                health.probe.describe(),
                reason,
            )
            if failures >= health.retries:
                self.handle(ev.HealthFailed(f"{reason} ({failures} in a row)"))
                return

    async def _run_probe_command(self, argv: tuple[str, ...], timeout: float) -> str | None:
        try:
            out = JobOutput(self.name, "probe")  # to the log only: not the job's own lines
            child = ChildProcess.spawn(self._spawn_spec(argv), lambda text, _at: out.line(text))
        except (OSError, subprocess.SubprocessError, KeyError, ValueError) as error:
            return _spawn_error(error)
        try:
            await asyncio.wait_for(child.wait(), timeout)
        except TimeoutError:
            await self._stop(child)
            return f"no answer within {timeout:g}s"
        except asyncio.CancelledError:
            await self._stop(child)
            raise
        returncode = await child.finish(self.config.stop_signal, self.config.stop_timeout)
        if child.exec_error is not None:
            return _spawn_error(child.exec_error)
        return None if returncode == 0 else ev.describe_exit(returncode)

    def _on_notify(self, message: Message) -> None:
        child = self._sender(message.pid)
        if child is None:
            if len(self._strangers) < MAX_LOGGED_STRANGERS and message.pid not in self._strangers:
                self._strangers.add(message.pid)
                log.warning(
                    "%s: ignored a notify message from pid %d, which is not one of this "
                    "job's processes",
                    self.name,
                    message.pid,
                )
            return
        fields = message.fields
        if "STATUS" in fields:
            self._status_text[child.pid] = fields["STATUS"][:MAX_STATUS_TEXT]
        if fields.get("READY") == "1" and self._awaiting(child.pid):
            self.handle(ev.Ready("READY=1"))
        if child.pid == self.job.pid:
            if fields.get("WATCHDOG") == "1":
                self.handle(ev.WatchdogPing())
            elif fields.get("WATCHDOG") == "trigger":
                self.handle(ev.WatchdogExpired())

    def _sender(self, pid: int) -> ChildProcess | None:
        """The child *pid* belongs to: its session (each child leads its own) or, as
        systemd's NotifyAccess=all has it, its cgroup, which a process that daemonized into
        a session of its own is still in."""
        if pid <= 0:
            return None
        try:
            session = os.getsid(pid)
        except OSError:
            return None  # already gone: it cannot be told apart from a stranger
        children = [child for child in (self._child, self._successor) if child is not None]
        for child in children:
            if session == child.pid:
                return child
        for child in children:
            if self.containment.holds(pid, child.cgroup):
                return child
        return None

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
            out = JobOutput(self.name, "before_restart")
            child = ChildProcess.spawn(spec, lambda text, _at: out.line(text))
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

    def _on_line(self, line: str, at: float) -> None:
        self.output.append(line, at)
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

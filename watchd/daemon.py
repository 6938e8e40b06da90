"""The daemon: wires config, watching and supervision together on one event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from watchd.config.diff import diff_jobs
from watchd.config.loader import load_config
from watchd.config.model import DaemonConfig, JobConfig, tcp_address
from watchd.config.nodes import shown
from watchd.control.commands import execute
from watchd.control.server import ControlServer
from watchd.control.status import JobStatus, summary_line
from watchd.errors import ConfigError
from watchd.log import set_level
from watchd.observe.history import History, Kind
from watchd.observe.http import MetricsServer
from watchd.observe.jobevents import fallback_event
from watchd.observe.tally import Tally
from watchd.offloop import off_loop
from watchd.supervise import cgroup, pid1
from watchd.supervise.cgroup import Hierarchy
from watchd.supervise.events import Restart, Start, Stop, TriggerKind
from watchd.supervise.process import OWN_PIDS
from watchd.supervise.reaper import OrphanReaper, become_subreaper
from watchd.supervise.runner import JobRunner
from watchd.supervise.sockets import HeldSockets
from watchd.supervise.states import TRANSIENT, StatusWord
from watchd.systemd import Notifier
from watchd.text import counted
from watchd.watch.base import Backend, Change, Subscription, WatchSpec
from watchd.watch.choose import WatchHub
from watchd.watch.debounced import DebouncedCall
from watchd.watch.filters import PathFilter
from watchd.watch.jobwatch import JobWatch

if TYPE_CHECKING:
    from watchd.observe.metrics import Metrics

log = logging.getLogger("watchd")

# Edits to config files are applied after this quiet time (editors write in several steps).
CONFIG_DEBOUNCE = 0.3
CONFIG_DEBOUNCE_MAX = 2.0
# How long the job cgroups a killed watchd left may take to empty after cgroup.kill.
SWEEP_TIMEOUT = 10.0
# Reading the config never holds the reload (or a SIGTERM) longer than this.
CONFIG_READ_TIMEOUT = 10.0


@dataclass
class Daemon:
    config: DaemonConfig
    runners: dict[str, JobRunner] = field(default_factory=dict)
    config_error: str | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self._stop_requested = asyncio.Event()
        self._reload_lock = asyncio.Lock()
        self._hub = WatchHub()
        self._config_watch: Subscription | None = None
        self._config_edited = DebouncedCall(
            CONFIG_DEBOUNCE, CONFIG_DEBOUNCE_MAX, self._config_settled
        )
        self._background: set[asyncio.Task[None]] = set()
        self._notifier = Notifier()
        self._status_update: asyncio.Handle | None = None
        # Per job; outlive its runners, so a redefined job keeps its sockets (SPEC §10).
        self._held: dict[str, HeldSockets] = {}
        # This daemon's cgroup subtree, or why it falls back to process groups.
        self.containment: Hierarchy | str = "not set up"
        self.history = History()
        self.tally = Tally()
        self.history.listen(self.tally)
        self._metrics: Metrics | None = None  # made on first use
        self._metrics_server: MetricsServer | None = None

    async def run(self) -> int:
        """Start every job, serve until SIGTERM/SIGINT, stop every job; return the exit code."""
        loop = asyncio.get_running_loop()
        become_subreaper()
        if pid1.is_init() and pid1.proc_is_foreign():
            log.warning("PID 1 without a /proc of its own: orphans will not be reaped")
        reaper = OrphanReaper(OWN_PIDS)
        status = 0
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        loop.add_signal_handler(signal.SIGHUP, self.request_reload)
        control = ControlServer(
            self.config.control.socket,
            self.config.control.group,
            self.config.control.mode,
            lambda request, reply: execute(self, request, reply),
        )
        try:
            await control.start()
            await self._contain()
            await self._serve_metrics()
            await self._watch_config_files()
            self.history.record(
                Kind.CONFIG, ok=True, why="watchd started", added=[j.name for j in self.config.jobs]
            )
            await self._start_jobs(self.config.jobs)
            await self._wait_for_readiness()
            self.ready.set()
            log.info("ready: %s", self.summary())
            self._notifier.ready(self.summary())
            self._notifier.start_watchdog()
            await self._stop_requested.wait()
            log.info("stopping %s", counted(len(self.runners), "job"))
            self._notifier.stopping()
        finally:
            await control.close()
            if self._metrics_server is not None:
                await self._metrics_server.close()
            status = await self._shutdown()
            if pid1.is_init():
                await pid1.end_leftovers(self._longest_stop_timeout())
            self._notifier.close()
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(sig)
            reaper.close()
            if isinstance(self.containment, Hierarchy):
                self.containment.close()
            if pid1.is_init():
                pid1.reap_all()
        log.info("stopped" if status == 0 else f"stopped; exit status {status}")
        return status

    async def _contain(self) -> None:
        """Claim a cgroup subtree (the same one a killed watchd with this control socket
        had) and empty the job cgroups it left: a job never runs twice."""
        self.containment = cgroup.setup(str(self.config.control.socket))
        if not isinstance(self.containment, Hierarchy):
            log.info("jobs are contained by process group only: %s", self.containment)
            return
        log.info("jobs are contained by cgroup below %s", self.containment.shown_root)
        for left in self.containment.leftovers():
            pids = left.pids()
            if pids:
                noun = "process" if len(pids) == 1 else "processes"
                where = self.containment.shown(left)
                log.warning("killing %d %s an earlier watchd left in %s", len(pids), noun, where)
            left.kill()
            if not await cgroup.emptied(left, SWEEP_TIMEOUT):
                log.error("%s is not empty after cgroup.kill", self.containment.shown(left))
            left.remove()

    def request_stop(self) -> None:
        self._stop_requested.set()

    def _status_changed(self) -> None:
        """Coalesce bursts of job state changes into one STATUS= update."""
        if self._status_update is None and self._notifier.enabled:
            self._status_update = asyncio.get_running_loop().call_soon(self._send_status)

    def _send_status(self) -> None:
        self._status_update = None
        self._notifier.status(self.summary())

    def request_reload(self) -> None:
        self._in_background(self.reload("reload requested"))

    # ---- status ---------------------------------------------------------------------

    def summary(self) -> str:
        """One line: how many jobs are in which state, and how many paths are watched."""
        return summary_line(self.job_status(list(self.runners)), self.config_error)

    # ---- control --------------------------------------------------------------------

    def job_names(self) -> list[str]:
        return list(self.runners)

    def job_status(self, names: Sequence[str]) -> list[JobStatus]:
        return [self.runners[name].status() for name in names if name in self.runners]

    def metrics_text(self) -> str:
        return self._render_metrics()[0].decode()

    def _render_metrics(self) -> tuple[bytes, str]:
        # Imported on first use: a daemon nobody scrapes never loads prometheus_client.
        from watchd.observe import metrics  # noqa: PLC0415

        if self._metrics is None:
            self._metrics = metrics.Metrics(
                lambda: self.job_status(list(self.runners)),
                self.tally,
                lambda: {name: runner.watch.pending() for name, runner in self.runners.items()},
                self.history,
            )
        return self._metrics.render(), metrics.CONTENT_TYPE

    async def _serve_metrics(self) -> None:
        """Serve GET /metrics where ``metrics.listen`` says (nowhere when it is unset)."""
        listen = self.config.metrics.listen
        old = self._metrics_server
        if old is not None and (old.host, old.port) == listen:
            return
        if old is not None:
            await old.close()
            self._metrics_server = None
        if listen is None:
            return
        server = MetricsServer(*listen, self._render_metrics)
        try:
            await server.start()
        except OSError as error:
            log.error("cannot serve metrics at %s: %s", tcp_address(*listen), error.strerror)
            return
        self._metrics_server = server
        log.info("metrics at http://%s/metrics", tcp_address(*server.address))

    async def control_jobs(self, command: str, names: Sequence[str]) -> list[str]:
        """Start, stop or restart jobs; return once each has settled (a started job is ready
        or has failed; a stop may time out), with what went wrong, a line per job. Hold or
        release their changes."""
        if command in ("hold", "release"):
            for name in names:
                watch = self.runners[name].watch
                watch.hold() if command == "hold" else watch.release()
            return []
        events: dict[str, Start | Stop | Restart] = {
            "start": Start(TriggerKind.MANUAL, "started by watchctl"),
            "stop": Stop("stopped by watchctl"),
            "restart": Restart(TriggerKind.MANUAL, "restarted by watchctl"),
        }
        event = events[command]
        runners = [self.runners[name] for name in names if name in self.runners]
        starts = {runner.name: runner.job.starts for runner in runners}
        for runner in runners:
            runner.handle(event)
        await asyncio.gather(*(_settle(runner) for runner in runners))
        if command == "stop":
            return []
        problems = (_start_problem(runner, starts[runner.name]) for runner in runners)
        return [problem for problem in problems if problem is not None]

    def log_tail(self, name: str, lines: int | None) -> list[tuple[float, str]]:
        return self.runners[name].output.tail(lines)

    def follow_log(self, name: str, callback: Callable[[float, str], None]) -> Callable[[], None]:
        return self.runners[name].output.follow(callback)

    # ---- config ---------------------------------------------------------------------

    async def reload(self, why: str) -> bool:
        """Re-read the config and apply the difference; a broken config changes nothing."""
        async with self._reload_lock:
            self._notifier.reloading()
            try:
                return await self._reload(why)
            finally:
                self._notifier.ready(self.summary())

    async def _reload(self, why: str) -> bool:
        path = self.config.path
        try:
            new = await off_loop(lambda: load_config(path), CONFIG_READ_TIMEOUT, "config reader")
        except TimeoutError:
            self.config_error = (
                f"reading the config took longer than {CONFIG_READ_TIMEOUT:g}s; is a file in it "
                "on a hung file system?"
            )
            self.history.record(Kind.CONFIG, ok=False, why=why, error=self.config_error)
            log.error(
                "%s; config refused, the running jobs are unchanged: %s", why, self.config_error
            )
            return False
        except ConfigError as error:
            return self._refuse(why, str(error))
        except Exception as error:  # a fault in the loader must not lose the running config
            log.exception("%s: reading the config failed", why)
            return self._refuse(why, f"{shown(self.config.path)}: cannot read the config: {error}")
        diff = diff_jobs(self.config, new)
        try:
            # Everything a job needs that can fail is made before any running job is touched.
            prepared = [self._runner(job) for job in [*diff.changed, *diff.added]]
        except Exception as error:
            log.exception("%s: setting up a job failed", why)
            return self._refuse(why, f"{shown(self.config.path)}: cannot set up a job: {error}")
        self.history.record(
            Kind.CONFIG,
            ok=True,
            why=why,
            added=[job.name for job in diff.added],
            removed=list(diff.removed),
            changed=[job.name for job in diff.changed],
        )
        self.config_error = None
        set_level(new.log_level)
        old_jobs_dir, self.config = self.config.jobs_dir, new
        if new.jobs_dir != old_jobs_dir:
            await self._watch_config_files()
        await self._serve_metrics()
        if not (diff.added or diff.removed or diff.changed):
            log.info("%s: no job changed", why)
            return True
        log.info(
            "%s: %d added, %d removed, %d changed, %d unchanged",
            why,
            len(diff.added),
            len(diff.removed),
            len(diff.changed),
            len(diff.unchanged),
        )
        # A changed job's output goes on in its new runner: its last lines, its followers.
        outputs = {job.name: self.runners[job.name].output for job in diff.changed}
        await asyncio.gather(
            self._stop_jobs(diff.removed, "removed from the config"),
            self._stop_jobs([job.name for job in diff.changed], "definition changed"),
        )
        for runner in prepared:
            if runner.name in outputs:
                runner.output.carry_on(outputs[runner.name])
        self._release_sockets(diff.removed)
        await self._start_runners(prepared, detail="config changed")
        # READY=1 ends the reload for systemd (and `systemctl reload`): the jobs this
        # config started or changed are ready by then, as at start-up.
        await self._wait_for_readiness(prepared)
        for job in diff.unchanged:
            self.runners[job.name].config = job  # same definition, maybe a new source
        return True

    def _refuse(self, why: str, error: str) -> bool:
        """Keep the last good config, and say why the new one is not in force."""
        self.config_error = error
        self.history.record(Kind.CONFIG, ok=False, why=why, error=error)
        log.error("%s; config refused, the running jobs are unchanged:\n%s", why, error)
        return False

    async def _watch_config_files(self) -> None:
        if self._config_watch is not None:
            await self._config_watch.close()
        roots = [self.config.path]
        if self.config.jobs_dir is not None:
            roots.append(self.config.jobs_dir)
        spec = WatchSpec(tuple(roots), PathFilter(include=["*.yaml", "*.yml"]), 1.0)
        self._config_watch = await self._hub.subscribe(
            spec, Backend.AUTO, self._on_config_changes, self._config_fell_back
        )
        if self._config_watch.backend.startswith("poll ("):
            fallback_event(self.history, None, self._config_watch.backend, at_start=True)

    def _config_fell_back(self, backend: str) -> None:
        fallback_event(self.history, None, backend, at_start=False)

    def _on_config_changes(self, changes: Sequence[Change]) -> None:
        self._config_edited.poke()

    def _config_settled(self) -> None:
        self._in_background(self.reload("config file changed"))

    # ---- jobs -----------------------------------------------------------------------

    async def _wait_for_readiness(self, among: Iterable[JobRunner] | None = None) -> None:
        """Until every job (of *among*, or all) that checks readiness is ready or has
        failed (bounded by the jobs' own timeouts), or a stop is requested."""
        candidates = self.runners.values() if among is None else among
        runners = [runner for runner in candidates if runner.job.checks_readiness]
        if not runners:
            return
        log.info("waiting for %s to get ready", counted(len(runners), "job"))
        bound = max(_settle_timeout(runner) for runner in runners)
        settled: asyncio.Future[Any] = asyncio.ensure_future(
            asyncio.gather(*(_settle(r) for r in runners))
        )
        stop: asyncio.Future[Any] = asyncio.ensure_future(self._stop_requested.wait())
        await asyncio.wait({settled, stop}, timeout=bound, return_when=asyncio.FIRST_COMPLETED)
        for waiter in (settled, stop):
            waiter.cancel()
        await asyncio.gather(settled, stop, return_exceptions=True)

    async def _start_jobs(self, jobs: Iterable[JobConfig], detail: str = "job started") -> None:
        await self._start_runners([self._runner(job) for job in jobs], detail)

    def _runner(self, job: JobConfig) -> JobRunner:
        """A runner for *job*, not started; its sockets are attached when it starts."""
        return JobRunner(
            job,
            partial(JobWatch.for_job, self._hub),
            self._status_changed,
            None,
            self.containment,
            history=self.history,
        )

    async def _start_runners(self, new: Sequence[JobRunner], detail: str) -> None:
        """Arm every job's watches first, then start the children: a change made once
        this returns is never missed. A job whose watches cannot be set up still runs."""
        for runner in new:
            runner.sockets = self._sockets_for(runner.config)
            self.runners[runner.name] = runner
        armed = await asyncio.gather(*(runner.arm() for runner in new), return_exceptions=True)
        for runner, outcome in zip(new, armed, strict=True):
            if isinstance(outcome, Exception):
                log.error("%s: cannot watch its paths: %s", runner.name, outcome)
            elif isinstance(outcome, BaseException):
                raise outcome
            runner.start(detail)

    def _sockets_for(self, job: JobConfig) -> HeldSockets | None:
        """The job's held sockets: the same ones while its ``sockets`` stay the same."""
        held = self._held.get(job.name)
        if held is not None and held.specs != job.sockets:
            self._release_sockets([job.name])
            held = None
        if not job.sockets:
            return None
        if held is None:
            held = self._held[job.name] = HeldSockets(job.sockets)
        return held

    def _release_sockets(self, names: Iterable[str]) -> None:
        for name in names:
            held = self._held.pop(name, None)
            if held is not None:
                held.close()

    async def _stop_jobs(self, names: Iterable[str], detail: str) -> int:
        """Stop the jobs; return the exit status that says how they stopped."""
        runners = [self.runners.pop(name) for name in names if name in self.runners]
        ends = await asyncio.gather(*(runner.shutdown(detail) for runner in runners))
        return pid1.stop_status(
            (end, runner.config.stop_signal) for end, runner in zip(ends, runners, strict=True)
        )

    def _longest_stop_timeout(self) -> float:
        return max((job.stop_timeout for job in self.config.jobs), default=10.0)

    async def _shutdown(self) -> int:
        self._config_edited.cancel()
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        status = await self._stop_jobs(list(self.runners), "watchd stopping")
        self._release_sockets(list(self._held))
        if self._config_watch is not None:
            await self._config_watch.close()
        await self._hub.close()
        return status

    def _in_background(self, coro: object) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)  # type: ignore[arg-type]
        self._background.add(task)
        task.add_done_callback(self._background.discard)


def _settle_timeout(runner: JobRunner) -> float:
    """Long enough for a stop, a start that gets ready (or times out), and its stop."""
    config = runner.config
    return 2 * config.stop_timeout + config.ready_timeout + 10


async def _settle(runner: JobRunner) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(
            runner.wait_until(lambda: runner.job.state not in TRANSIENT), _settle_timeout(runner)
        )


def _start_problem(runner: JobRunner, starts_before: int) -> str | None:
    """Why a start or restart just asked for did not leave the job serving, if it did not."""
    job = runner.job
    if job.state in TRANSIENT:
        return f"{runner.name}: still {job.word.value} after {_settle_timeout(runner):g}s"
    if job.word in (StatusWord.BACKOFF, StatusWord.FAILED):
        why = "" if job.last_trigger is None else f" ({job.last_trigger.detail})"
        return f"{runner.name}: {job.word.value}{why}"
    if job.start_error is not None and job.starts != starts_before:
        return f"{runner.name}: {job.start_error}"
    return None

"""The Prometheus text format of the daemon's jobs, by ``prometheus_client``.

Read at scrape time from the jobs' status records and the :class:`Tally`; nothing here
runs between scrapes. ``prometheus_client`` does the exposition (names, label escaping,
histogram series) so the format stays right as it evolves.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence

from prometheus_client import exposition
from prometheus_client.core import (
    CollectorRegistry,
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.process_collector import ProcessCollector

from watchd import __version__
from watchd.control.status import JobStatus
from watchd.observe.history import History
from watchd.observe.tally import Tally
from watchd.supervise.events import TriggerKind
from watchd.supervise.states import StatusWord

# The classic text format (Prometheus' own scrapers and promtool read it).
CONTENT_TYPE = getattr(exposition, "CONTENT_TYPE_PLAIN_0_0_4", exposition.CONTENT_TYPE_LATEST)


class Metrics:
    """What ``watchctl metrics`` prints and ``GET /metrics`` serves."""

    def __init__(
        self,
        jobs: Callable[[], Sequence[JobStatus]],
        tally: Tally,
        held_changes: Callable[[], Mapping[str, int]] = dict,
        history: History | None = None,
    ) -> None:
        self._registry = CollectorRegistry(auto_describe=False)
        self._registry.register(_JobCollector(jobs, tally, held_changes))
        if history is not None:
            self._registry.register(_HistoryCollector(history))
        self._registry.register(ProcessCollector(registry=None))

    def render(self) -> bytes:
        return exposition.generate_latest(self._registry)


class _JobCollector:
    def __init__(
        self,
        jobs: Callable[[], Sequence[JobStatus]],
        tally: Tally,
        held_changes: Callable[[], Mapping[str, int]],
    ) -> None:
        self._jobs = jobs
        self._tally = tally
        self._held_changes = held_changes
        self._started = time.time()

    def collect(self) -> Iterator[Metric]:
        jobs = self._jobs()
        yield from self._daemon(jobs)
        yield from self._states(jobs)
        yield from self._counters(jobs)
        yield from self._holds(jobs)
        yield self._histogram()

    def _daemon(self, jobs: Sequence[JobStatus]) -> Iterator[Metric]:
        info = GaugeMetricFamily("watchd_info", "watchd's version", labels=["version"])
        info.add_metric([__version__], 1)
        yield info
        yield GaugeMetricFamily(
            "watchd_start_time_seconds", "When watchd started (Unix time)", value=self._started
        )
        yield GaugeMetricFamily("watchd_jobs", "Jobs in the config", value=len(jobs))
        last_ok = GaugeMetricFamily(
            "watchd_config_last_reload_successful",
            "1 when the last config read was applied, 0 when it was refused",
            value=1 if self._tally.last_reload_ok else 0,
        )
        yield last_ok
        reloads = CounterMetricFamily(
            "watchd_config_reloads", "Config reads, applied or refused", labels=["result"]
        )
        for ok, result in ((True, "applied"), (False, "refused")):
            reloads.add_metric([result], self._tally.reloads[ok])
        yield reloads

    def _states(self, jobs: Sequence[JobStatus]) -> Iterator[Metric]:
        up = GaugeMetricFamily("watchd_job_up", "1 when the job's child runs", labels=["job"])
        state = GaugeMetricFamily(
            "watchd_job_state", "1 for the state the job is in", labels=["job", "state"]
        )
        uptime = GaugeMetricFamily(
            "watchd_job_uptime_seconds", "How long the current child has run", labels=["job"]
        )
        paths = GaugeMetricFamily(
            "watchd_watched_paths",
            "Paths watched: directories (inotify) or files and directories (poll)",
            labels=["job", "backend"],
        )
        for job in jobs:
            up.add_metric([job.name], 1 if job.state is StatusWord.RUNNING else 0)
            for word in StatusWord:
                state.add_metric([job.name, word.value], 1 if job.state is word else 0)
            uptime.add_metric([job.name], job.uptime or 0.0)
            if job.backend:
                # "poll (inotify watch limit reached)" is the poll backend, with its reason.
                paths.add_metric([job.name, job.backend.split()[0]], job.watched_paths)
        yield from (up, state, uptime, paths)

    def _counters(self, jobs: Sequence[JobStatus]) -> Iterator[Metric]:
        tally = self._tally
        restarts = CounterMetricFamily(
            "watchd_job_restarts", "Restarts, by what caused them", labels=["job", "reason"]
        )
        last_exit = GaugeMetricFamily(
            "watchd_job_last_exit_code",
            "The last child's exit status (128 + N when killed by signal N)",
            labels=["job"],
        )
        overflows = CounterMetricFamily(
            "watchd_inotify_overflows",
            "Times the kernel dropped inotify events under the job's watches (rescanned)",
            labels=["job"],
        )
        for job in jobs:
            reasons = {kind.value for kind in TriggerKind}
            reasons |= {reason for name, reason in tally.restarts if name == job.name}
            for reason in sorted(reasons):
                restarts.add_metric([job.name, reason], tally.restarts[job.name, reason])
            if job.name in tally.last_exit:
                last_exit.add_metric([job.name], tally.last_exit[job.name])
            overflows.add_metric([job.name], tally.overflows[job.name])
        yield from (restarts, last_exit, overflows)

    def _holds(self, jobs: Sequence[JobStatus]) -> Iterator[Metric]:
        tally = self._tally
        held = GaugeMetricFamily(
            "watchd_job_held",
            "1 while the job's changes are held (watchctl hold, or a git or hg operation)",
            labels=["job"],
        )
        kept = GaugeMetricFamily(
            "watchd_job_held_changes", "Changes kept while the job is held", labels=["job"]
        )
        holds = CounterMetricFamily(
            "watchd_job_holds",
            "Times the job's changes were held, by what held them",
            labels=["job", "by"],
        )
        fallbacks = CounterMetricFamily(
            "watchd_watch_fallbacks",
            "Times the job's watches moved to polling (inotify could not serve them)",
            labels=["job"],
        )
        pending = self._held_changes()
        for job in jobs:
            held.add_metric([job.name], 0 if job.held_by is None else 1)
            kept.add_metric([job.name], pending.get(job.name, 0))
            for by in ("watchctl", "vcs"):
                holds.add_metric([job.name, by], tally.holds[job.name, by])
            fallbacks.add_metric([job.name], tally.fallbacks[job.name])
        yield from (held, kept, holds, fallbacks)

    def _histogram(self) -> Metric:
        histogram = self._tally.change_to_running
        family = HistogramMetricFamily(
            "watchd_change_to_restart_seconds",
            "From the first change of a burst to the new child running",
        )
        family.add_metric([], histogram.cumulative(), histogram.total)
        return family


class _HistoryCollector:
    """The event history: how much it holds against its bounds (what it costs)."""

    def __init__(self, history: History) -> None:
        self._history = history

    def collect(self) -> Iterator[Metric]:
        history = self._history
        yield CounterMetricFamily(
            "watchd_events", "Events recorded (the newest seq)", value=history.last_seq
        )
        yield GaugeMetricFamily(
            "watchd_event_history_events", "Events the history holds", value=len(history)
        )
        yield GaugeMetricFamily(
            "watchd_event_history_bytes",
            "Bytes the history holds (its events' text and a fixed cost per event)",
            value=history.size,
        )
        yield GaugeMetricFamily(
            "watchd_event_history_max_events",
            "The history's bound in events",
            value=history.max_events,
        )
        yield GaugeMetricFamily(
            "watchd_event_history_max_bytes",
            "The history's bound in bytes",
            value=history.max_bytes,
        )

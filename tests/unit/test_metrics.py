"""The metrics: counted from the events, read off the jobs, and valid Prometheus text."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from watchd.control.status import JobStatus
from watchd.observe.history import History, Kind
from watchd.observe.metrics import Metrics
from watchd.observe.tally import CHANGE_BUCKETS, Tally
from watchd.supervise.events import TriggerKind
from watchd.supervise.states import StatusWord


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def recorded(clock: Clock | None = None) -> tuple[History, Tally]:
    history = History()
    tally = Tally(clock or Clock())
    history.listen(tally)
    return history, tally


def samples(text: str, name: str) -> Iterator[Sample]:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                yield sample


def value(text: str, name: str, **labels: str) -> float:
    (found,) = [
        s.value for s in samples(text, name) if all(s.labels.get(k) == v for k, v in labels.items())
    ]
    return found


WEB = JobStatus(
    name="web", state=StatusWord.RUNNING, pid=42, uptime=12.5, backend="inotify", watched_paths=7
)
API = JobStatus(name="api", state=StatusWord.BACKOFF, backend="poll (inotify watch limit reached)")


def render(tally: Tally, *jobs: JobStatus) -> str:
    return Metrics(lambda: jobs, tally).render().decode()


def test_restarts_are_counted_by_reason_one_per_restart() -> None:
    history, tally = recorded()
    for reason in ("change", "change", "exit", "health"):
        history.record(Kind.RESTART, "web", reason=reason, detail="x")
    text = render(tally, WEB)
    assert value(text, "watchd_job_restarts_total", job="web", reason="change") == 2
    assert value(text, "watchd_job_restarts_total", job="web", reason="exit") == 1
    assert value(text, "watchd_job_restarts_total", job="web", reason="manual") == 0
    assert value(text, "watchd_job_restarts_total", job="web", reason="health") == 1


def test_state_up_uptime_and_watched_paths_are_read_off_the_jobs() -> None:
    _, tally = recorded()
    text = render(tally, WEB, API)
    assert value(text, "watchd_job_up", job="web") == 1
    assert value(text, "watchd_job_up", job="api") == 0
    assert value(text, "watchd_job_state", job="api", state="backoff") == 1
    states = [s for s in samples(text, "watchd_job_state") if s.labels["job"] == "api"]
    assert sorted(s.labels["state"] for s in states) == sorted(w.value for w in StatusWord)
    assert sum(s.value for s in states) == 1
    assert value(text, "watchd_job_uptime_seconds", job="web") == 12.5
    assert value(text, "watchd_watched_paths", job="web", backend="inotify") == 7
    assert value(text, "watchd_watched_paths", job="api", backend="poll") == 0
    assert value(text, "watchd_jobs") == 2
    (info,) = samples(text, "watchd_info")
    assert info.labels["version"]


def test_the_last_exit_is_its_status_or_128_plus_the_signal() -> None:
    history, tally = recorded()
    history.record(Kind.STATE, "web", **{"from": "running", "to": "backoff"}, status=2)
    assert value(render(tally, WEB), "watchd_job_last_exit_code", job="web") == 2
    history.record(Kind.STATE, "web", **{"from": "running", "to": "backoff"}, signal="SIGKILL")
    assert value(render(tally, WEB), "watchd_job_last_exit_code", job="web") == 137
    assert list(samples(render(tally, API), "watchd_job_last_exit_code")) == []


def test_change_to_running_is_timed_from_the_first_change_of_the_burst() -> None:
    clock = Clock()
    history, tally = recorded(clock)
    history.record(Kind.CHANGE, "web", paths=["/a"], count=1)
    clock.now += 0.05
    history.record(Kind.CHANGE, "web", paths=["/b"], count=1)
    clock.now += 0.25
    history.record(Kind.STATE, "web", **{"from": "starting", "to": "running"}, reason="change")
    history.record(Kind.STATE, "web", **{"from": "starting", "to": "running"}, reason="manual")
    text = render(tally, WEB)
    assert value(text, "watchd_change_to_restart_seconds_count") == 1
    assert abs(value(text, "watchd_change_to_restart_seconds_sum") - 0.3) < 1e-9
    assert value(text, "watchd_change_to_restart_seconds_bucket", le="0.2") == 0
    assert value(text, "watchd_change_to_restart_seconds_bucket", le="0.3") == 1
    assert value(text, "watchd_change_to_restart_seconds_bucket", le="+Inf") == 1
    buckets = list(samples(text, "watchd_change_to_restart_seconds_bucket"))
    assert len(buckets) == len(CHANGE_BUCKETS) + 1


def test_a_restart_for_another_reason_is_not_a_change_timing() -> None:
    history, tally = recorded()
    history.record(Kind.CHANGE, "web", paths=["/a"], count=1)
    history.record(Kind.STATE, "web", **{"from": "starting", "to": "running"}, reason="exit")
    history.record(Kind.STATE, "web", **{"from": "starting", "to": "running"}, reason="change")
    assert value(render(tally, WEB), "watchd_change_to_restart_seconds_count") == 0


def test_config_reloads_and_a_removed_jobs_counters() -> None:
    history, tally = recorded()
    history.record(Kind.RESTART, "api", reason="exit")
    history.record(Kind.OVERFLOW, "api", roots=["/srv"])
    history.record(Kind.CONFIG, ok=False, error="bad")
    text = render(tally, WEB, API)
    assert value(text, "watchd_config_last_reload_successful") == 0
    assert value(text, "watchd_config_reloads_total", result="refused") == 1
    assert value(text, "watchd_inotify_overflows_total", job="api") == 1
    history.record(Kind.CONFIG, ok=True, added=[], removed=["api"], changed=[])
    text = render(tally, WEB)
    assert value(text, "watchd_config_last_reload_successful") == 1
    assert value(text, "watchd_config_reloads_total", result="applied") == 1
    assert not [s for s in samples(text, "watchd_job_restarts_total") if s.labels["job"] == "api"]
    assert tally.restarts == {}


def test_label_values_are_escaped() -> None:
    _, tally = recorded()
    odd = JobStatus(name='we"b\\', state=StatusWord.RUNNING)
    assert value(render(tally, odd), "watchd_job_up", job='we"b\\') == 1


def test_the_process_itself_is_measured() -> None:
    _, tally = recorded()
    text = render(tally)
    assert value(text, "process_resident_memory_bytes") > 0
    assert value(text, "process_open_fds") > 0


def test_holds_are_counted_by_who_held_and_held_jobs_read_off_the_jobs() -> None:
    history, tally = recorded()
    history.record(Kind.HOLD, "web", held_by="watchctl", previous=None, count=0)
    history.record(Kind.RELEASE, "web", held_by="watchctl", count=3)
    history.record(Kind.HOLD, "web", held_by="/srv/.git/index.lock", previous=None, count=1)
    held = JobStatus(name="web", state=StatusWord.RUNNING, held_by="/srv/.git/index.lock")
    text = Metrics(lambda: [held, API], tally, lambda: {"web": 4}).render().decode()
    assert value(text, "watchd_job_holds_total", job="web", by="watchctl") == 1
    assert value(text, "watchd_job_holds_total", job="web", by="vcs") == 1
    assert value(text, "watchd_job_holds_total", job="api", by="vcs") == 0
    assert value(text, "watchd_job_held", job="web") == 1
    assert value(text, "watchd_job_held", job="api") == 0
    assert value(text, "watchd_job_held_changes", job="web") == 4
    assert value(text, "watchd_job_held_changes", job="api") == 0


def test_fallbacks_to_polling_are_counted_per_job() -> None:
    history, tally = recorded()
    history.record(Kind.FALLBACK, "api", backend="poll (inotify watch limit reached)")
    history.record(Kind.FALLBACK, None, backend="poll (inotify watch limit reached)")
    text = render(tally, WEB, API)
    assert value(text, "watchd_watch_fallbacks_total", job="api") == 1
    assert value(text, "watchd_watch_fallbacks_total", job="web") == 0


def test_every_trigger_kind_is_a_restart_reason_label_and_counts() -> None:
    history, tally = recorded()
    for reason in TriggerKind:
        history.record(Kind.RESTART, "web", reason=str(reason), detail="x")
    text = render(tally, WEB)
    for reason in TriggerKind:
        assert value(text, "watchd_job_restarts_total", job="web", reason=str(reason)) == 1


def test_an_overlap_that_took_over_is_a_change_timing_and_a_failed_one_is_not() -> None:
    clock = Clock()
    history, tally = recorded(clock)
    history.record(Kind.CHANGE, "web", paths=["/a"], count=1)
    clock.now += 0.4
    history.record(Kind.RESTART, "web", reason="change", overlap=True, ok=True, pid=2)
    history.record(Kind.CHANGE, "web", paths=["/a"], count=1)
    history.record(Kind.RESTART, "web", reason="change", overlap=True, ok=False, pid=2)
    text = render(tally, WEB)
    assert value(text, "watchd_change_to_restart_seconds_count") == 1
    assert abs(value(text, "watchd_change_to_restart_seconds_sum") - 0.4) < 1e-9
    assert value(text, "watchd_job_restarts_total", job="web", reason="change") == 2


def test_the_history_tells_what_it_holds_against_its_bounds() -> None:
    history = History(max_events=3, max_bytes=1_000_000)
    for n in range(5):
        history.record(Kind.CHANGE, "web", paths=[f"/srv/{n}.py"], count=1)
    text = Metrics(lambda: [WEB], Tally(Clock()), history=history).render().decode()
    assert value(text, "watchd_events_total") == 5
    assert value(text, "watchd_event_history_events") == 3
    assert value(text, "watchd_event_history_bytes") == history.size > 3 * 50
    assert value(text, "watchd_event_history_max_events") == 3
    assert value(text, "watchd_event_history_max_bytes") == 1_000_000

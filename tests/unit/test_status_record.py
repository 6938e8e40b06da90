"""The job status record: what the daemon sends is what watchctl reads."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from watchd.control.protocol import ProtocolError
from watchd.control.status import HealthRecord, JobStatus, TriggerRecord, summary_line
from watchd.ctl import format_table
from watchd.supervise.states import StatusWord

texts = st.text(st.characters(exclude_categories=["Cs"]), max_size=30)
triggers = st.builds(TriggerRecord, kind=texts, detail=texts, at=texts)
statuses = st.builds(
    JobStatus,
    name=texts,
    state=st.sampled_from(StatusWord),
    pid=st.none() | st.integers(1, 2**22),
    uptime=st.none() | st.floats(0, 1e7).map(lambda seconds: round(seconds, 3)),
    restarts=st.integers(0, 10**6),
    last_trigger=st.none() | triggers,
    backend=st.none() | st.sampled_from(["inotify", "poll"]),
    watched_paths=st.integers(0, 10**7),
    sockets=st.lists(texts, max_size=3).map(tuple),
    containment=st.sampled_from(["cgroup", "process-group"]),
    containment_reason=st.none() | texts,
    cgroup=st.none() | texts,
    memory_bytes=st.none() | st.integers(0, 2**40),
    cpu_seconds=st.none() | st.floats(0, 1e7).map(lambda seconds: round(seconds, 3)),
    limits=st.dictionaries(
        st.sampled_from(["memory", "tasks", "cpu"]), st.integers(1, 2**40) | st.floats(0.01, 64)
    ).map(lambda limits: tuple(limits.items())),
    limit_warnings=st.lists(texts, max_size=3).map(tuple),
    ready=st.none() | st.booleans(),
    status_text=st.none() | texts,
    health=st.none()
    | st.builds(
        HealthRecord,
        ok=st.none() | st.booleans(),
        failures=st.integers(0, 100),
        detail=st.none() | texts,
    ),
)


@given(statuses)
def test_a_status_survives_the_wire_unchanged(status: JobStatus) -> None:
    assert JobStatus.from_wire(json.loads(json.dumps(status.to_wire()))) == status


def test_keys_a_newer_daemon_adds_are_ignored_and_missing_ones_take_defaults() -> None:
    status = JobStatus.from_wire({"name": "web", "state": "running", "cgroup_v9": {"x": 1}})
    assert status == JobStatus("web", StatusWord.RUNNING)


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        ([], "job status is not a JSON object"),
        ({"state": "running"}, '"name" must be text'),
        ({"name": "web", "state": "dancing"}, "unknown state 'dancing'"),
        ({"name": "web", "state": "running", "pid": "12"}, '"pid" must be int'),
        ({"name": "web", "state": "running", "pid": True}, '"pid" must be int'),
        ({"name": "web", "state": "running", "sockets": "x"}, '"sockets" must be a list'),
        ({"name": "web", "state": "running", "last_trigger": {"kind": 1}}, '"kind" must be text'),
        ({"name": "web", "state": "running", "limits": {"memory": "1G"}}, '"limits" must map'),
        ({"name": "web", "state": "running", "limit_warnings": "x"}, '"limit_warnings" must be'),
        ({"name": "web", "state": "running", "ready": "yes"}, '"ready" must be true or false'),
        ({"name": "web", "state": "running", "status_text": 3}, '"status_text" must be str'),
        ({"name": "web", "state": "running", "health": {"ok": 1}}, '"health.ok" must be true'),
    ],
)
def test_a_malformed_status_is_a_clear_protocol_error(body: object, complaint: str) -> None:
    with pytest.raises(ProtocolError, match=complaint.replace("(", r"\(")):
        JobStatus.from_wire(body)


def test_the_summary_counts_jobs_by_the_words_users_see() -> None:
    jobs = [
        JobStatus("a", StatusWord.RUNNING, backend="inotify", watched_paths=1000),
        JobStatus("b", StatusWord.RUNNING, backend="poll", watched_paths=204),
        JobStatus("c", StatusWord.BACKOFF),
        JobStatus("d", StatusWord.FAILED),
    ]
    assert summary_line(jobs) == (
        "2 jobs running, 1 backing off, 1 failed; 1,204 paths watched (inotify, poll)"
    )
    assert summary_line(jobs[2:3], "jobs.d/x.yaml:3:1: boom\nmore") == (
        "1 job backing off; 0 paths watched; config error: jobs.d/x.yaml:3:1: boom"
    )
    assert summary_line([]) == "no jobs; 0 paths watched"


def test_the_table_shows_each_field_of_the_record() -> None:
    job = JobStatus(
        "web",
        StatusWord.RUNNING,
        pid=4242,
        uptime=75.0,
        restarts=3,
        last_trigger=TriggerRecord("change", "src/app.py", "2020-01-02T03:04:05+0000"),
        backend="inotify",
        watched_paths=12,
        memory_bytes=43_515_904,
        cpu_seconds=0.25,
        ready=True,
        status_text="serving 4 workers",
    )
    header, row = format_table([job]).splitlines()
    assert header.split() == [
        "JOB",
        "STATE",
        "PID",
        "UPTIME",
        "RESTARTS",
        "MEM",
        "CPU",
        "LAST",
        "TRIGGER",
        "WATCH",
        "STATUS",
    ]
    assert row.split()[:7] == ["web", "running", "4242", "1m15s", "3", "41.5M", "250ms"]
    assert "change: src/app.py (Jan 02 03:04)" in row
    assert "inotify, 12 paths  serving 4 workers" in row
    assert row.endswith("serving 4 workers")

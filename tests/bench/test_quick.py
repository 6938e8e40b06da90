"""The benchmark in --quick mode runs end to end and writes well-formed records.

Speed is never asserted here: that is what the benchmark itself reports.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.report import PEER_ORDER
from bench.workloads import WORKLOADS

REPO = Path(__file__).resolve().parents[2]
PEERS_READY = (REPO / "bench" / ".peers-venv" / "bin" / "python").exists()

# Per workload, the fields every record has, and the kind of value each holds.
NUMBER = (int, float)
FIELDS: dict[str, dict[str, tuple[type, ...]]] = {
    "child_startup": {"ms": NUMBER},
    "latency": {"tool": (str,), "files": (int,), "stop_ms": NUMBER, "new_child_ms": NUMBER},
    "idle": {"tool": (str,), "files": (int,), "cpu_percent": NUMBER, "peak_rss_mb": NUMBER},
    "storm": {"tool": (str,), "restarts": (int,), "tool_alive": (bool,)},
    "startup": {"tool": (str,), "first_child_ms": NUMBER, "change_after_ready_seen": (bool,)},
    "poll": {"tool": (str,), "files": (int,)},
    "many_jobs": {"inotify_instances": (int,), "inotify_watches": (int,), "peak_rss_mb": NUMBER},
    "hot_reload": {"save_to_new_child_ms": NUMBER, "untouched_jobs_kept_pids": (bool,)},
    "downtime": {"tool": (str,), "requests": (int,), "failed": (int,), "failures": (dict,)},
    "django_reload": {"tool": (str,), "measure": (str,), "modules": (int,)},
    "gunicorn": {
        "tool": (str,),
        "requests": (int,),
        "failed": (int,),
        "failures": (dict,),
        "restart_ms": (list,),
        "over_graceful_timeout": (int,),
    },
    "scale": {"tool": (str,), "directories": (int,), "peak_rss_mb": NUMBER, "rss_mb": NUMBER},
    "observe": {"tool": (str,), "measure": (str,)},
}
# Per measure of the observe workload.
OBSERVE_FIELDS: dict[str, dict[str, tuple[type, ...]]] = {
    "idle": {"cpu_percent": NUMBER, "peak_rss_mb": NUMBER, "scrapes": (int,)},
    "restart": {"files": (int,), "new_child_ms": NUMBER},
    "history": {
        "history_events": (int,),
        "history_bytes": (int,),
        "max_events": (int,),
        "max_bytes": (int,),
        "rss_mb_filled": NUMBER,
        "bound_reached": (bool,),
    },
}


def run_quick(tmp_path: Path, tools: str) -> list[dict[str, object]]:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "all",
            "--quick",
            "--tools",
            tools,
            "--out",
            str(tmp_path / "out"),
            "--workdir",
            str(tmp_path / "work"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=560,
        check=False,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
    )
    assert result.returncode == 0, result.stderr
    lines = (tmp_path / "out" / "results.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def check_records(records: list[dict[str, object]], tools: set[str]) -> None:
    assert {record["workload"] for record in records} == set(WORKLOADS)
    for record in records:
        for field, kinds in FIELDS[str(record["workload"])].items():
            value = record[field]
            assert value is None or isinstance(value, kinds), (field, record)
        measure = str(record.get("measure")) if record["workload"] == "observe" else ""
        for field, kinds in OBSERVE_FIELDS.get(measure, {}).items():
            assert isinstance(record[field], kinds), (field, record)
    measured = {record["tool"] for record in records if "tool" in record}
    assert {str(tool).split()[0] for tool in measured} == tools


@pytest.mark.timeout(600)
def test_quick_run_of_watchd_writes_every_workload(tmp_path: Path) -> None:
    records = run_quick(tmp_path, "watchd")
    check_records(records, {"watchd"})
    report = (tmp_path / "out" / "REPORT.md").read_text()
    for title in (
        "Latency",
        "Idle cost",
        "Storm",
        "Startup",
        "Poll backend",
        "Many jobs",
        "Hot reload",
        "Downtime",
        "Django",
        "A million files",
        "gunicorn restarted under load",
        "cost of the event history and metrics",
        "Targets",
    ):
        assert f"{title}" in report
    # The restarts actually happened: a latency record without a new child would be None.
    assert all(r["new_child_ms"] is not None for r in records if r["workload"] == "latency")
    observed = [r for r in records if r["workload"] == "observe"]
    assert {r["measure"] for r in observed} == {"idle", "restart", "history"}
    assert all(r["new_child_ms"] is not None for r in observed if r["measure"] == "restart")
    # The history recorded the writes: each is an event for each job watching.
    assert all(int(str(r["recorded"])) > 0 for r in observed if r["measure"] == "history")
    # gunicorn was restarted under both kill modes: each new master answered.
    restarted = {r["tool"]: r["restart_ms"] for r in records if r["workload"] == "gunicorn"}
    assert set(restarted) == {
        "watchd (kill_mode: group, held socket)",
        "watchd (kill_mode: mixed, held socket)",
    }
    assert all(isinstance(ms, list) and ms and None not in ms for ms in restarted.values())


@pytest.mark.timeout(600)
@pytest.mark.skipif(not PEERS_READY, reason="the peers' venv is built by `python -m bench`")
def test_quick_run_with_the_peers(tmp_path: Path) -> None:
    tools = {"watchd", *PEER_ORDER}
    records = run_quick(tmp_path, ",".join(sorted(tools)))
    check_records(records, tools)
    # Held sockets: the quick run's few restarts under load failed no request.
    downtime = {r["tool"]: r for r in records if r["workload"] == "downtime"}
    assert downtime["watchd (stop-first, held socket)"]["failed"] == 0

"""Held sockets, readiness, overlap and health in the config: what they become, and how a
wrong one is reported (FILE:LINE:COL: key: expected, got)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from watchd.config.loader import load_config
from watchd.config.model import JobConfig, Probe, RestartMode, SocketConfig
from watchd.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
SCHEMA: dict[str, Any] = json.loads((REPO / "config" / "watchd.schema.json").read_text())


@pytest.fixture(autouse=True)
def _in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def load_job(tmp_path: Path, body: str) -> JobConfig:
    (tmp_path / "watchd.yaml").write_text("jobs:\n  web:\n" + textwrap.indent(body, "    "))
    (job,) = load_config(tmp_path / "watchd.yaml").jobs
    return job


def errors(tmp_path: Path, body: str) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        load_job(tmp_path, body)
    return str(raised.value).splitlines()


FULL = """\
command: ["gunicorn", "app:wsgi"]
sockets:
  - tcp: 127.0.0.1:8000
    name: http
  - tcp: "[::1]:8001"
  - tcp: :8002
  - unix: run/app.sock
    mode: "0660"
ready: notify
ready_timeout: 45s
restart_mode: overlap
health: {http: "http://127.0.0.1:8000/health", interval: 5s, timeout: 1s, retries: 2}
watchdog: 20s
"""


def test_every_serving_key_is_read(tmp_path: Path) -> None:
    job = load_job(tmp_path, FULL)
    assert job.sockets == (
        SocketConfig("tcp", "http", host="127.0.0.1", port=8000),
        SocketConfig("tcp", "web", host="::1", port=8001),
        SocketConfig("tcp", "web", host="", port=8002),
        SocketConfig("unix", "web", path=tmp_path / "run" / "app.sock", mode=0o660),
    )
    assert job.ready.kind == "notify"
    assert job.ready_timeout == 45.0
    assert job.restart_mode is RestartMode.OVERLAP
    assert job.health is not None
    assert job.health.probe == Probe("http", url="http://127.0.0.1:8000/health")
    assert (job.health.interval, job.health.timeout, job.health.retries) == (5.0, 1.0, 2)
    assert job.watchdog == 20.0


def test_the_defaults_are_todays_behaviour(tmp_path: Path) -> None:
    job = load_job(tmp_path, "command: x\n")
    assert job.sockets == ()
    assert job.ready.kind == "none"
    assert job.restart_mode is RestartMode.STOP_FIRST
    assert job.health is None
    assert job.watchdog is None


@pytest.mark.parametrize(
    ("ready", "probe"),
    [
        ("{tcp: ':9000'}", Probe("tcp", host="127.0.0.1", port=9000)),
        ("{http: 'http://localhost:9000/up'}", Probe("http", url="http://localhost:9000/up")),
        ("{exec: 'curl -sf http://x/'}", Probe("exec", command=("curl", "-sf", "http://x/"))),
    ],
)
def test_ready_probes(tmp_path: Path, ready: str, probe: Probe) -> None:
    job = load_job(tmp_path, f"command: x\nready: {ready}\n")
    assert job.ready.kind == "probe"
    assert job.ready.probe == probe


def test_every_bad_socket_is_reported_where_it_is_written(tmp_path: Path) -> None:
    found = errors(
        tmp_path,
        """\
command: x
sockets:
  - tcp: 127.0.0.1
  - tcp: "[::1]8000"
  - tcp: example.com:80
  - tcp: ":99999"
  - {tcp: ":1", unix: /x}
  - {tcp: ":1", mode: "0600"}
  - {unix: /tmp/x, mode: abc}
  - {tcp: ":2", nmae: x}
  - {tcp: ":3", name: "a:b"}
  - tcp: ":4"
  - tcp: ":4"
""",
    )
    assert found == [
        'watchd.yaml:5:14: jobs.web.sockets[0].tcp: expected an address like "127.0.0.1:8000",'
        ' "[::1]:8000" or ":8000", got "127.0.0.1"',
        'watchd.yaml:6:14: jobs.web.sockets[1].tcp: expected an address like "127.0.0.1:8000",'
        ' "[::1]:8000" or ":8000", got "[::1]8000"',
        "watchd.yaml:7:14: jobs.web.sockets[2].tcp: expected an IP address (or localhost)"
        ' before the port, got "example.com:80"',
        'watchd.yaml:8:14: jobs.web.sockets[3].tcp: expected a port from 0 to 65535, got ":99999"',
        'watchd.yaml:9:9: jobs.web.sockets[4]: expected exactly one of "tcp" or "unix", got both',
        'watchd.yaml:10:21: jobs.web.sockets[5]: "mode" applies to unix sockets only',
        'watchd.yaml:11:30: jobs.web.sockets[6].mode: expected permission bits like "0660",'
        ' got "abc"',
        "watchd.yaml:12:21: jobs.web.sockets[7].nmae: unknown key; expected one of: tcp, unix,"
        " name, mode",
        "watchd.yaml:13:27: jobs.web.sockets[8].name: expected a name of printable ASCII"
        ' without ":" (LISTEN_FDNAMES), got "a:b"',
        "watchd.yaml:15:9: jobs.web.sockets[10]: :4 is listed twice",
    ]


def test_bad_ready_restart_mode_and_health(tmp_path: Path) -> None:
    found = errors(
        tmp_path,
        """\
command: x
ready: sometimes
ready_timeout: 0s
restart_mode: parallel
health: {http: "https://x/", retries: 2}
""",
    )
    assert found == [
        "watchd.yaml:4:12: jobs.web.ready: expected none, notify, {tcp: ADDR}, {http: URL} or"
        ' {exec: CMD}, got "sometimes"',
        'watchd.yaml:5:20: jobs.web.ready_timeout: expected a duration above zero like "1s",'
        ' got "0s"',
        "watchd.yaml:6:19: jobs.web.restart_mode: expected one of stop-first | overlap, got"
        ' "parallel"',
        'watchd.yaml:7:20: jobs.web.health.http: expected a URL like "http://127.0.0.1:8000/health",'
        ' got "https://x/"',
    ]


def test_a_probe_needs_exactly_one_kind(tmp_path: Path) -> None:
    found = errors(tmp_path, "command: x\nready: {tcp: ':1', http: 'http://x/'}\n")
    assert found == [
        "watchd.yaml:4:12: jobs.web.ready: expected exactly one of tcp, http or exec,"
        " got tcp and http"
    ]
    found = errors(tmp_path, "command: x\nhealth: {interval: 1s, retries: 0, exec: [true]}\n")
    assert found == [
        "watchd.yaml:4:37: jobs.web.health.retries: expected a whole number of 1 or more, got 0"
    ]


def test_the_schema_agrees_on_the_full_example() -> None:
    document = {"jobs": {"web": yaml.safe_load(FULL)}}
    jsonschema.validate(document, SCHEMA)


@pytest.mark.parametrize(
    "job",
    [
        {"command": "x", "sockets": [{"tcp": ":1", "unix": "/x"}]},
        {"command": "x", "sockets": [{"tcpp": ":1"}]},
        {"command": "x", "sockets": [{"tcp": "example.com:80"}]},
        {"command": "x", "ready": "sometimes"},
        {"command": "x", "ready": {"tcp": ":1", "http": "http://x/"}},
        {"command": "x", "restart_mode": "parallel"},
        {"command": "x", "health": {"interval": "1s"}},
    ],
)
def test_the_schema_refuses_what_the_loader_refuses(tmp_path: Path, job: dict[str, Any]) -> None:
    document = {"jobs": {"web": job}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, SCHEMA)
    (tmp_path / "watchd.yaml").write_text(yaml.safe_dump(document))
    with pytest.raises(ConfigError):
        load_config(tmp_path / "watchd.yaml")

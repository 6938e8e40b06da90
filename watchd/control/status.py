"""A job's status as the control socket reports it: one typed record, one wire form.

The daemon builds a :class:`JobStatus` for each job, :meth:`JobStatus.to_wire` is the only
place it becomes JSON, and ``watchctl`` reads it back through :meth:`JobStatus.from_wire`,
so the two ends cannot drift apart. Keys a newer daemon adds are ignored by an older
``watchctl``; keys an older daemon lacks take their defaults.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from watchd.control.protocol import ProtocolError
from watchd.supervise.states import StatusWord
from watchd.text import counted

# How a trigger's moment is written on the wire: local time with its offset.
STAMP_FORMAT = "%Y-%m-%dT%H:%M:%S%z"

_Scalar = TypeVar("_Scalar", int, float, str)


@dataclass(frozen=True)
class TriggerRecord:
    """What last started or restarted a job."""

    kind: str
    detail: str
    at: str  # STAMP_FORMAT

    @classmethod
    def at_time(cls, kind: str, detail: str, wall: float) -> TriggerRecord:
        return cls(kind, detail, time.strftime(STAMP_FORMAT, time.localtime(wall)))

    def to_wire(self) -> dict[str, Any]:
        return {"kind": self.kind, "detail": self.detail, "at": self.at}

    @classmethod
    def from_wire(cls, body: object) -> TriggerRecord | None:
        if body is None:
            return None
        fields = _mapping(body, "last_trigger")
        return cls(
            _text(fields, "kind", "last_trigger"),
            _text(fields, "detail", "last_trigger"),
            _text(fields, "at", "last_trigger"),
        )


@dataclass(frozen=True)
class HealthRecord:
    """The serving child's health checks so far (SPEC §10 ``health``)."""

    ok: bool | None = None  # the last check passed; None before the first
    failures: int = 0  # in a row
    detail: str | None = None  # why the last check failed

    def to_wire(self) -> dict[str, Any]:
        return {"ok": self.ok, "failures": self.failures, "detail": self.detail}

    @classmethod
    def from_wire(cls, body: object, where: str) -> HealthRecord | None:
        if body is None:
            return None
        fields = _mapping(body, "health")
        ok = fields.get("ok")
        if ok is not None and not isinstance(ok, bool):
            raise ProtocolError(
                f'malformed reply from watchd: {where}: "health.ok" must be true, false or null'
            )
        return cls(
            ok,
            _optional(fields, "failures", int, where) or 0,
            _optional(fields, "detail", str, where),
        )


@dataclass(frozen=True)
class JobStatus:
    """One job as ``watchctl status`` shows it (SPEC §4 words in ``state``)."""

    name: str
    state: StatusWord
    pid: int | None = None
    uptime: float | None = None  # seconds, of the current child
    restarts: int = 0
    last_trigger: TriggerRecord | None = None
    backend: str | None = None  # "inotify", "poll", ...; None when nothing is watched
    watched_paths: int = 0
    sockets: tuple[str, ...] = ()  # where the job's held sockets listen
    # SPEC §11: "cgroup", or "process-group" (then containment_reason says why).
    containment: str = "process-group"
    containment_reason: str | None = None
    cgroup: str | None = None  # the job's cgroup, as /proc/PID/cgroup names it
    memory_bytes: int | None = None
    cpu_seconds: float | None = None
    limits: tuple[tuple[str, float], ...] = ()  # (key, value): memory bytes, tasks, cpu share
    limit_warnings: tuple[str, ...] = ()  # FILE:LINE:COL: warning: limits.KEY: not enforced…
    held_by: str | None = None  # "watchctl" or a version-control lock's path: changes held
    ready: bool | None = None  # None: the job has no readiness check (SPEC §14)
    status_text: str | None = None  # the child's last STATUS=
    health: HealthRecord | None = None  # None: the job has no health check (or no child yet)

    def to_wire(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state": self.state.value,
            "pid": self.pid,
            "uptime": None if self.uptime is None else round(self.uptime, 3),
            "restarts": self.restarts,
            "last_trigger": None if self.last_trigger is None else self.last_trigger.to_wire(),
            "backend": self.backend,
            "watched_paths": self.watched_paths,
            "sockets": list(self.sockets),
            "containment": self.containment,
            "containment_reason": self.containment_reason,
            "cgroup": self.cgroup,
            "memory_bytes": self.memory_bytes,
            "cpu_seconds": None if self.cpu_seconds is None else round(self.cpu_seconds, 3),
            "limits": dict(self.limits),
            "limit_warnings": list(self.limit_warnings),
            "held": self.held,
            "held_by": self.held_by,
            "ready": self.ready,
            "status_text": self.status_text,
            "health": None if self.health is None else self.health.to_wire(),
        }

    @property
    def held(self) -> bool:
        return self.held_by is not None

    @classmethod
    def from_wire(cls, body: object) -> JobStatus:
        fields = _mapping(body, "job status")
        name = _text(fields, "name", "job status")
        where = f"status of {name!r}"
        try:
            state = StatusWord(str(fields.get("state")))
        except ValueError:
            raise ProtocolError(f"{where}: unknown state {fields.get('state')!r}") from None
        sockets = fields.get("sockets", [])
        if not isinstance(sockets, list) or not all(isinstance(s, str) for s in sockets):
            raise ProtocolError(f'{where}: "sockets" must be a list of addresses')
        limits = fields.get("limits") or {}
        if not isinstance(limits, dict) or not all(
            isinstance(value, int | float) and not isinstance(value, bool)
            for value in limits.values()
        ):
            raise ProtocolError(f'{where}: "limits" must map names to numbers')
        warnings = fields.get("limit_warnings", [])
        if not isinstance(warnings, list) or not all(isinstance(w, str) for w in warnings):
            raise ProtocolError(f'{where}: "limit_warnings" must be a list of text')
        return cls(
            name=name,
            state=state,
            pid=_optional(fields, "pid", int, where),
            uptime=_optional(fields, "uptime", float, where),
            restarts=_optional(fields, "restarts", int, where) or 0,
            last_trigger=TriggerRecord.from_wire(fields.get("last_trigger")),
            backend=_optional(fields, "backend", str, where),
            watched_paths=_optional(fields, "watched_paths", int, where) or 0,
            sockets=tuple(sockets),
            containment=_optional(fields, "containment", str, where) or "process-group",
            containment_reason=_optional(fields, "containment_reason", str, where),
            cgroup=_optional(fields, "cgroup", str, where),
            memory_bytes=_optional(fields, "memory_bytes", int, where),
            cpu_seconds=_optional(fields, "cpu_seconds", float, where),
            limits=tuple((str(key), value) for key, value in limits.items()),
            limit_warnings=tuple(warnings),
            held_by=_optional(fields, "held_by", str, where),
            ready=_optional_bool(fields, "ready", where),
            status_text=_optional(fields, "status_text", str, where),
            health=HealthRecord.from_wire(fields.get("health"), where),
        )


# How the one-line summary names each state, in the order it lists them.
_SUMMARY_PHRASES = {
    StatusWord.RUNNING: "running",
    StatusWord.STARTING: "starting",
    StatusWord.STOPPING: "stopping",
    StatusWord.BACKOFF: "backing off",
    StatusWord.FAILED: "failed",
    StatusWord.EXITED: "exited",
    StatusWord.STOPPED: "stopped",
}


def summary_line(jobs: Sequence[JobStatus], config_error: str | None = None) -> str:
    """``2 jobs running, 1 failed; 1,204 paths watched (inotify)``: for systemd's STATUS=
    and ``watchctl reload``."""
    counts = Counter(job.state for job in jobs)
    present = [(counts[word], phrase) for word, phrase in _SUMMARY_PHRASES.items() if counts[word]]
    parts = [f"{count} {phrase}" for count, phrase in present]
    if present:  # the first count names what it counts: "1 job running, 2 failed"
        count, phrase = present[0]
        parts[0] = f"{count} {'job' if count == 1 else 'jobs'} {phrase}"
    paths = sum(job.watched_paths for job in jobs)
    backends = sorted({job.backend for job in jobs if job.backend})
    text = f"{', '.join(parts) or 'no jobs'}; {counted(paths, 'path')} watched"
    if backends:
        text += f" ({', '.join(backends)})"
    if config_error:
        text += "; config error: " + config_error.splitlines()[0]
    return text


def _mapping(body: object, what: str) -> Mapping[str, Any]:
    if not isinstance(body, dict):
        raise ProtocolError(f"malformed reply from watchd: {what} is not a JSON object")
    return body


def _text(fields: Mapping[str, Any], key: str, where: str) -> str:
    value = fields.get(key)
    if not isinstance(value, str):
        raise ProtocolError(f'malformed reply from watchd: {where}: "{key}" must be text')
    return value


def _optional_bool(fields: Mapping[str, Any], key: str, where: str) -> bool | None:
    value = fields.get(key)
    if value is not None and not isinstance(value, bool):
        raise ProtocolError(f'malformed reply from watchd: {where}: "{key}" must be true or false')
    return value


def _optional(
    fields: Mapping[str, Any], key: str, kind: type[_Scalar], where: str
) -> _Scalar | None:
    value = fields.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else kind):
        raise ProtocolError(
            f'malformed reply from watchd: {where}: "{key}" must be {kind.__name__}'
        )
    return kind(value)

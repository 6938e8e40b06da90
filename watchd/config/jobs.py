"""One job's keys, merged over the defaults, checked and turned into a JobConfig."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import yaml

from watchd.config import bounds, limits, serving, values
from watchd.config.model import JobConfig, KillMode, RestartMode, RestartPolicy, WatchConfig
from watchd.config.nodes import Invalid, Issues, dotted, is_null, mapping, show, source_of
from watchd.watch.base import Backend

Parser = Callable[[yaml.Node], Any]

_JOB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")

# Keys parsed from their own value alone; ``command``, ``before_restart`` (which depend on
# ``shell``), ``sockets`` (named after the job by default), ``env`` and ``watch`` (mappings
# merged key by key) are handled apart.
JOB_VALUES: dict[str, Parser] = {
    "shell": values.boolean,
    "cwd": values.path,
    "user": values.user,
    "group": values.group,
    "debounce": values.duration,
    "debounce_max": values.duration,
    "on_change": values.on_change,
    "before_restart_timeout": values.positive_duration,
    "stop_signal": values.signal_name,
    "stop_timeout": values.duration,
    "kill_mode": lambda node: values.choice(node, KillMode),
    "restart": lambda node: values.choice(node, RestartPolicy),
    "restart_exit_codes": values.exit_codes,
    "backoff_initial": values.duration,
    "backoff_max": values.duration,
    "backoff_reset_after": values.duration,
    "start_limit_burst": lambda node: values.integer(node, 1, bounds.START_LIMIT_BURST_MAX),
    "start_limit_interval": values.duration,
    "output": values.output,
    "log_lines": lambda node: values.integer(node, 0, bounds.LOG_LINES_MAX),
    "ready": serving.ready,
    "ready_timeout": values.positive_duration,
    "restart_mode": lambda node: values.choice(node, RestartMode),
    "health": serving.health,
    "watchdog": values.positive_duration,
    "limits": limits.limits,
}
WATCH_VALUES: dict[str, Parser] = {
    "paths": values.paths,
    "include": values.patterns,
    "exclude": values.patterns,
    "gitignore": values.boolean,
    "default_excludes": values.boolean,
    "vcs": values.boolean,
    "backend": lambda node: values.choice(node, Backend),
    "poll_interval": values.positive_duration,
}
JOB_KEYS = ("command", "before_restart", "env", "watch", "sockets", *JOB_VALUES)
# Keys whose ``null`` means "not set": the default applies.
_NULLABLE = {"cwd", "user", "group", "before_restart", "health", "watchdog", "sockets", "limits"}


@dataclass(frozen=True)
class Entry:
    """One key's value and where it was written (a job's own file, or the main file's defaults)."""

    node: yaml.Node
    key_path: str
    key_node: yaml.Node


def unknown_key(issues: Issues, key_node: yaml.Node, key_path: str, known: Iterable[str]) -> None:
    key = str(key_node.value)
    known = list(known)
    import difflib  # noqa: PLC0415  # only for a mistyped key: kept out of the daemon's memory

    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    if len(known) == 1:
        issues.at(key_node, key_path, f'unknown key; expected "{known[0]}"')
    elif close:
        issues.at(key_node, key_path, f'unknown key; did you mean "{close[0]}"?')
    else:
        issues.at(key_node, key_path, f"unknown key; expected one of: {', '.join(known)}")


def job_entries(node: yaml.Node, key_path: str, issues: Issues) -> dict[str, Entry]:
    """A job's keys (or the defaults'), with ``watch.*`` and ``env.*`` flattened for merging."""
    entries: dict[str, Entry] = {}
    for key, (key_node, value) in (mapping(node, key_path, issues) or {}).items():
        here = dotted(key_path, key)
        if key not in JOB_KEYS:
            unknown_key(issues, key_node, here, JOB_KEYS)
        elif key in ("watch", "env"):
            for sub, (sub_key_node, sub_value) in (mapping(value, here, issues) or {}).items():
                if key == "watch" and sub not in WATCH_VALUES:
                    unknown_key(issues, sub_key_node, f"{here}.{sub}", WATCH_VALUES)
                else:
                    entries[f"{key}.{sub}"] = Entry(sub_value, f"{here}.{sub}", sub_key_node)
        else:
            entries[key] = Entry(value, here, key_node)
    return entries


def check_job_name(name_node: yaml.Node, issues: Issues) -> bool:
    if _JOB_NAME.fullmatch(str(name_node.value)):
        return True
    issues.at(
        name_node,
        "jobs",
        'expected a job name of letters, digits, "-", "_", "." or "@", '
        f"at most 64 characters, got {show(name_node)}",
    )
    return False


class _JobBuilder:
    def __init__(self, entries: dict[str, Entry], issues: Issues) -> None:
        self.entries = entries
        self.issues = issues
        self.ok = True

    def parse(self, key: str, parser: Parser) -> Any:
        """The parsed value of *key*, or ``None`` when it is unset or wrong (wrong is reported)."""
        entry = self.entries.get(key)
        if entry is None:
            return None
        if key in _NULLABLE and is_null(entry.node):
            return None
        try:
            return parser(entry.node)
        except Invalid as error:
            for each in (error, *error.more):
                self.issues.at(each.node or entry.node, entry.key_path + each.where, each.message)
            self.ok = False
            return None

    def parsed(self, table: dict[str, Parser], prefix: str = "") -> dict[str, Any]:
        found = {key: self.parse(prefix + key, parser) for key, parser in table.items()}
        return {key: value for key, value in found.items() if value is not None}

    def environment(self) -> tuple[tuple[str, str], ...]:
        pairs = []
        for key, entry in self.entries.items():
            if key.startswith("env."):
                try:
                    pairs.append((values.env_name(entry.key_node), values.env_value(entry.node)))
                except Invalid as error:
                    self.issues.at(error.node or entry.node, entry.key_path, error.message)
                    self.ok = False
        return tuple(sorted(pairs))


def build_job(name_node: yaml.Node, entries: dict[str, Entry], issues: Issues) -> JobConfig | None:
    """The job named by *name_node* from its merged *entries*; None (and issues) when wrong."""
    name = str(name_node.value)
    builder = _JobBuilder(entries, issues)
    settings = builder.parsed(JOB_VALUES)
    shell = bool(settings.get("shell", False))
    command = builder.parse("command", lambda node: values.command(node, shell))
    if "command" not in entries:
        issues.at(name_node, f"jobs.{name}", 'missing the required key "command"')
        builder.ok = False
    before = builder.parse("before_restart", lambda node: values.command(node, shell))
    sockets = builder.parse("sockets", serving.sockets(name)) or ()
    watch = WatchConfig(**builder.parsed(WATCH_VALUES, "watch."))
    env = builder.environment()
    if not builder.ok or command is None:
        return None
    try:
        values.fits_exec(command, entries["command"].node, env)
    except Invalid as error:
        issues.at(entries["command"].node, entries["command"].key_path, error.message)
        return None
    return JobConfig(
        name=name,
        command=command,
        source=source_of(name_node),
        env=env,
        watch=watch,
        before_restart=before,
        sockets=sockets,
        **settings,
    )

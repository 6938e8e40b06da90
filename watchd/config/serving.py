"""Parsers for how a job serves: held ``sockets``, ``ready``, ``health`` (SPEC §10).

Each takes a YAML node and returns a model value or raises Invalid pointing at the exact
node, with ``where`` naming the part of the value (``[0].tcp``) after the job's key.
"""

from __future__ import annotations

import ipaddress
import urllib.parse
from collections.abc import Callable

import yaml

from watchd.config import values
from watchd.config.model import HealthCheck, Probe, Readiness, SocketConfig
from watchd.config.nodes import Invalid, show, text_of, value_of

SOCKET_KEYS = ("tcp", "unix", "name", "mode")
PROBE_KINDS = ("tcp", "http", "exec")
HEALTH_KEYS = (*PROBE_KINDS, "interval", "timeout", "retries")
# sun_path holds 108 bytes, the terminating NUL included.
UNIX_PATH_MAX = 107
_ADDRESS_FORMS = '"127.0.0.1:8000", "[::1]:8000" or ":8000"'


def _entries(node: yaml.Node, where: str) -> dict[str, tuple[yaml.Node, yaml.Node]]:
    if not isinstance(node, yaml.MappingNode):
        raise Invalid(f"expected a mapping, got {show(node)}", node, where)
    found: dict[str, tuple[yaml.Node, yaml.Node]] = {}
    for key_node, value in node.value:
        key = str(key_node.value)
        if key in found:
            raise Invalid("duplicate key", key_node, f"{where}.{key}")
        found[key] = (key_node, value)
    return found


def _only(
    entries: dict[str, tuple[yaml.Node, yaml.Node]], known: tuple[str, ...], where: str
) -> None:
    for key, (key_node, _) in entries.items():
        if key not in known:
            raise Invalid(
                f"unknown key; expected one of: {', '.join(known)}", key_node, f"{where}.{key}"
            )


def tcp_address(node: yaml.Node, where: str = "", default_host: str = "") -> tuple[str, int]:
    """``host:port``, ``[v6]:port``, ``:port`` (every address) or a bare port number."""
    raw = value_of(node) if isinstance(node, yaml.ScalarNode) else None
    text = str(raw) if isinstance(raw, int) and not isinstance(raw, bool) else text_of(node)
    expected = f"expected an address like {_ADDRESS_FORMS}, got {show(node)}"
    if text is None:
        raise Invalid(expected, node, where)
    text = text.strip()
    if text.isdigit():
        host, port_text = "", text
    elif text.startswith("["):
        host, bracket, port_text = text[1:].partition("]:")
        if not bracket:
            raise Invalid(expected, node, where)
    else:
        host, colon, port_text = text.rpartition(":")
        if not colon or ":" in host:
            raise Invalid(expected, node, where)
    if host == "localhost":
        host = "127.0.0.1"
    if host:
        try:
            host = str(ipaddress.ip_address(host))
        except ValueError:
            message = f"expected an IP address (or localhost) before the port, got {show(node)}"
            raise Invalid(message, node, where) from None
    if not port_text.isdigit() or int(port_text) > 65535:
        raise Invalid(f"expected a port from 0 to 65535, got {show(node)}", node, where)
    return host or default_host, int(port_text)


def _fd_name(node: yaml.Node, where: str) -> str:
    name = text_of(node)
    if not name or len(name) > 255 or ":" in name or not (name.isascii() and name.isprintable()):
        raise Invalid(
            f'expected a name of printable ASCII without ":" (LISTEN_FDNAMES), got {show(node)}',
            node,
            where,
        )
    return name


def _socket(node: yaml.Node, where: str, job_name: str) -> SocketConfig:
    entries = _entries(node, where)
    _only(entries, SOCKET_KEYS, where)
    kinds = [kind for kind in ("tcp", "unix") if kind in entries]
    if len(kinds) != 1:
        got = "both" if kinds else "neither"
        raise Invalid(f'expected exactly one of "tcp" or "unix", got {got}', node, where)
    (kind,) = kinds
    name = job_name
    if "name" in entries:
        name = _fd_name(entries["name"][1], f"{where}.name")
    value = entries[kind][1]
    if kind == "tcp":
        if "mode" in entries:
            raise Invalid('"mode" applies to unix sockets only', entries["mode"][0], where)
        host, port = tcp_address(value, f"{where}.tcp")
        return SocketConfig("tcp", name, host=host, port=port)
    try:
        path = values.path(value)
    except Invalid as error:
        raise Invalid(error.message, error.node or value, f"{where}.unix") from None
    if len(str(path).encode()) > UNIX_PATH_MAX:
        message = f"expected a socket path of at most {UNIX_PATH_MAX} bytes, got {show(value)}"
        raise Invalid(message, value, f"{where}.unix")
    mode = None
    if "mode" in entries:
        try:
            mode = values.file_mode(entries["mode"][1])
        except Invalid as error:
            raise Invalid(error.message, entries["mode"][1], f"{where}.mode") from None
    return SocketConfig("unix", name, path=path, mode=mode)


def sockets(job_name: str) -> Callable[[yaml.Node], tuple[SocketConfig, ...]]:
    """The parser of one job's ``sockets``: a list of ``{tcp: ADDR}`` / ``{unix: PATH}``."""

    def parse(node: yaml.Node) -> tuple[SocketConfig, ...]:
        if isinstance(node, yaml.MappingNode):
            node = yaml.SequenceNode("tag:yaml.org,2002:seq", [node], node.start_mark)
        if not isinstance(node, yaml.SequenceNode):
            raise Invalid(f'expected a list like [{{tcp: ":8000"}}], got {show(node)}', node)
        found: list[SocketConfig] = []
        problems: list[Invalid] = []
        for index, item in enumerate(node.value):
            try:
                socket = _socket(item, f"[{index}]", job_name)
            except Invalid as error:
                problems.append(error)
                continue
            if any(other.describe() == socket.describe() for other in found):
                problems.append(Invalid(f"{socket.describe()} is listed twice", item, f"[{index}]"))
            found.append(socket)
        if problems:
            first, *rest = problems
            raise Invalid(first.message, first.node, first.where, tuple(rest))
        return tuple(found)

    return parse


def probe(node: yaml.Node, where: str, keys: tuple[str, ...] = PROBE_KINDS) -> Probe:
    """``{tcp: ADDR}``, ``{http: URL}`` or ``{exec: CMD}`` (one of them, in a mapping that may
    hold other *keys*)."""
    entries = _entries(node, where)
    _only(entries, keys, where)
    kinds = [kind for kind in PROBE_KINDS if kind in entries]
    if len(kinds) != 1:
        got = " and ".join(kinds) if kinds else "none of them"
        raise Invalid(f"expected exactly one of tcp, http or exec, got {got}", node, where)
    (kind,) = kinds
    value = entries[kind][1]
    here = f"{where}.{kind}"
    if kind == "tcp":
        host, port = tcp_address(value, here, default_host="127.0.0.1")
        return Probe("tcp", host=host, port=port)
    if kind == "http":
        return Probe("http", url=_http_url(value, here))
    try:
        return Probe("exec", command=values.command(value, shell=False))
    except Invalid as error:
        raise Invalid(error.message, error.node or value, here) from None


def _http_url(node: yaml.Node, where: str) -> str:
    text = (text_of(node) or "").strip()
    parts = urllib.parse.urlsplit(text)
    try:
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        port_ok = False
    if parts.scheme != "http" or not parts.hostname or not port_ok:
        raise Invalid(
            f'expected a URL like "http://127.0.0.1:8000/health", got {show(node)}', node, where
        )
    return text


def ready(node: yaml.Node) -> Readiness:
    """``none`` | ``notify`` | ``{tcp: ADDR}`` | ``{http: URL}`` | ``{exec: CMD}``."""
    if isinstance(node, yaml.ScalarNode):
        text = (text_of(node) or "").strip()
        if text in ("none", "notify"):
            return Readiness(text)
        if value_of(node) is False:  # ``ready: no`` reads as a boolean in YAML 1.1
            return Readiness("none")
        forms = "none, notify, {tcp: ADDR}, {http: URL} or {exec: CMD}"
        raise Invalid(f"expected {forms}, got {show(node)}")
    return Readiness("probe", probe(node, ""))


def health(node: yaml.Node) -> HealthCheck:
    """``{http: URL | tcp: ADDR | exec: CMD, interval: 10s, timeout: 2s, retries: 3}``."""
    check = probe(node, "", HEALTH_KEYS)
    entries = _entries(node, "")
    settings: dict[str, float | int] = {}
    for key in ("interval", "timeout"):
        if key in entries:
            try:
                settings[key] = values.positive_duration(entries[key][1])
            except Invalid as error:
                raise Invalid(error.message, entries[key][1], f".{key}") from None
    if "retries" in entries:
        try:
            settings["retries"] = values.integer(entries["retries"][1], 1)
        except Invalid as error:
            raise Invalid(error.message, entries["retries"][1], ".retries") from None
    return HealthCheck(check, **settings)  # type: ignore[arg-type]

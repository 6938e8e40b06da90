"""The ``limits`` key: ``{memory: 512M, tasks: 200, cpu: 50%}`` (SPEC §11).

Each value keeps where it was written, so that a limit the machine cannot enforce is a
warning pointing at it (``FILE:LINE:COL: warning: ...``), in ``watchd check`` and at start.
"""

from __future__ import annotations

import re

import yaml

from watchd.config.model import Limits
from watchd.config.nodes import Invalid, show, shown, source_of, text_of, value_of

LIMIT_KEYS = ("memory", "tasks", "cpu")
# Binary multiples, as systemd's MemoryMax= reads them.
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*$", re.IGNORECASE)
_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")
# The kernel refuses a cpu.max quota below 1 ms per 100 ms period.
MIN_CPU = 0.01
# Far above any machine, and below what the kernel's files (and an int of a float) can hold.
MAX_MEMORY = float(1 << 50)
MAX_TASKS = 1 << 22  # PID_MAX_LIMIT
MAX_CPU = 1000.0


def position(node: yaml.Node) -> str:
    mark = node.start_mark
    return f"{shown(source_of(node))}:{mark.line + 1}:{mark.column + 1}"


def memory(node: yaml.Node) -> int:
    text = text_of(node)
    match = _SIZE.match(text or "")
    size = 0.0 if match is None else float(match.group(1)) * _UNITS[match.group(2).upper()]
    if not 1 <= size <= MAX_MEMORY:  # a float: 400 digits are infinite, and refused here
        raise Invalid(
            f'expected a size like "512M" or "2G" (bytes if bare), at most 1024T, got {show(node)}'
        )
    return int(size)


def tasks(node: yaml.Node) -> int:
    value = value_of(node) if isinstance(node, yaml.ScalarNode) else None
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_TASKS:
        raise Invalid(f"expected a whole number from 1 to {MAX_TASKS}, got {show(node)}")
    return value


def cpu(node: yaml.Node) -> float:
    """A share of one CPU: ``50%`` is half of one, ``200%`` two whole CPUs."""
    match = _PERCENT.match(text_of(node) or "")
    share = 0.0 if match is None else float(match.group(1)) / 100
    if not MIN_CPU <= share <= MAX_CPU:
        raise Invalid(
            f'expected a share of CPU from 1% to {MAX_CPU * 100:.0f}% like "50%", got {show(node)}'
        )
    return share


_PARSERS = {"memory": memory, "tasks": tasks, "cpu": cpu}


def limits(node: yaml.Node) -> Limits:
    if not isinstance(node, yaml.MappingNode):
        raise Invalid(
            f'expected a mapping like {{memory: 512M, tasks: 200, cpu: "50%"}}, got {show(node)}'
        )
    found: dict[str, int | float] = {}
    where: list[tuple[str, str]] = []
    problems: list[Invalid] = []
    for key_node, value in node.value:
        key = str(key_node.value)
        if key not in _PARSERS:
            problems.append(
                Invalid(
                    f"unknown key; expected one of: {', '.join(LIMIT_KEYS)}", key_node, f".{key}"
                )
            )
            continue
        if key in found:
            problems.append(Invalid("duplicate key", key_node, f".{key}"))
            continue
        try:
            found[key] = _PARSERS[key](value)
        except Invalid as error:
            problems.append(Invalid(error.message, value, f".{key}"))
            continue
        where.append((key, position(value)))
    if problems:
        first, *rest = problems
        raise Invalid(first.message, first.node, first.where, tuple(rest))
    size, count, share = found.get("memory"), found.get("tasks"), found.get("cpu")
    return Limits(
        memory=None if size is None else int(size),
        tasks=None if count is None else int(count),
        cpu=share,
        where=tuple(where),
    )

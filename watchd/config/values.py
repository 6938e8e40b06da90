"""Parsers for single config values: each takes a YAML node, returns a value or raises Invalid."""

from __future__ import annotations

import grp
import math
import os
import pwd
import re
import signal
from enum import StrEnum
from pathlib import Path
from typing import TypeVar

import pathspec
import yaml

from watchd.config import bounds
from watchd.config.model import ChangeAction, FileOutput, LogOutput, NullOutput, OnChange, Output
from watchd.config.nodes import Invalid, is_null, show, source_of, text_of, value_of
from watchd.config.split import SplitError, split_command
from watchd.durations import parse_duration

E = TypeVar("E", bound=StrEnum)

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def duration(node: yaml.Node) -> float:
    if not isinstance(node, yaml.ScalarNode):
        raise Invalid(f'expected a duration like "10s", got {show(node)}')
    try:
        seconds = parse_duration(value_of(node))
    except ValueError as error:
        raise Invalid(str(error)) from None
    # ``.nan`` is a float, ``1e999`` infinite; either would stop a timer from ever firing.
    if not math.isfinite(seconds) or seconds > bounds.DURATION_MAX:
        raise Invalid(f'expected a duration of at most a year ("8760h"), got {show(node)}')
    return seconds


def positive_duration(node: yaml.Node) -> float:
    seconds = duration(node)
    if seconds <= 0:
        raise Invalid(f'expected a duration above zero like "1s", got {show(node)}')
    return seconds


def integer(node: yaml.Node, low: int, high: int | None = None) -> int:
    value = value_of(node) if isinstance(node, yaml.ScalarNode) else None
    in_range = isinstance(value, int) and not isinstance(value, bool) and value >= low
    if not in_range or (high is not None and value > high):  # type: ignore[operator]
        bounds = f"from {low} to {high}" if high is not None else f"of {low} or more"
        raise Invalid(f"expected a whole number {bounds}, got {show(node)}")
    return value  # type: ignore[return-value]


def boolean(node: yaml.Node) -> bool:
    value = value_of(node) if isinstance(node, yaml.ScalarNode) else None
    if not isinstance(value, bool):
        raise Invalid(f"expected true or false, got {show(node)}")
    return value


def string(node: yaml.Node) -> str:
    text = text_of(node)
    if text is None or text == "":
        raise Invalid(f"expected a string, got {show(node)}")
    return usable(text, node)


def usable(text: str, node: yaml.Node) -> str:
    """*text*, refused when no argument, path or environment variable can hold it."""
    if "\0" in text:
        message = "a NUL character cannot be in a command, path or environment"
        raise Invalid(f"{message}, got {show(node)}", node)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise Invalid(
            f"expected Unicode text, got a lone surrogate in {show(node)}", node
        ) from None
    return text


def choice(node: yaml.Node, kind: type[E]) -> E:
    text = text_of(node)
    try:
        return kind(text or "")
    except ValueError:
        options = " | ".join(member.value for member in kind)
        raise Invalid(f"expected one of {options}, got {show(node)}") from None


def strings(node: yaml.Node) -> tuple[str, ...]:
    """A list of strings; a single string is a list of one."""
    if isinstance(node, yaml.ScalarNode):
        return (string(node),)
    if not isinstance(node, yaml.SequenceNode):
        raise Invalid(f"expected a list of strings, got {show(node)}")
    items = []
    for item in node.value:
        text = text_of(item)
        if text is None or text == "":
            raise Invalid(f"expected a string, got {show(item)}", item)
        items.append(usable(text, item))
    return tuple(items)


def patterns(node: yaml.Node) -> tuple[str, ...]:
    """gitignore-style patterns, each one checked now rather than when the job starts."""
    texts = strings(node)
    items = node.value if isinstance(node, yaml.SequenceNode) else [node]
    for text, item in zip(texts, items, strict=True):
        try:
            pathspec.GitIgnoreSpec.from_lines([text])
        except Exception:  # pathspec's own error, or re's for a range such as [z-a]
            raise Invalid(f"expected a gitignore-style pattern, got {show(item)}", item) from None
    return texts


def path(node: yaml.Node) -> Path:
    """An absolute path; a relative one is taken from the folder of the file it is written in.

    Symlinks are kept as written, not resolved: ``current -> releases/v2`` switched later
    must be followed (watched again, a child started there), not pinned to ``v2``.
    """
    return _absolute(source_of(node).parent, string(node), node)


def socket_path(node: yaml.Node) -> Path:
    """An absolute path whose links are left for the kernel to follow (and to refuse, in a
    sticky world-writable directory), never resolved here."""
    return source_of(node).parent / _expanded(string(node), node)


def paths(node: yaml.Node) -> tuple[Path, ...]:
    base = source_of(node).parent
    return tuple(_absolute(base, text, node) for text in strings(node))


def _absolute(base: Path, text: str, node: yaml.Node) -> Path:
    # Lexically: "." and ".." go, symlinks stay.
    return Path(os.path.abspath(base / _expanded(text, node)))


def _expanded(text: str, node: yaml.Node) -> Path:
    """``~`` and ``~user`` expanded; a user with no home is a clear error."""
    try:
        return Path(text).expanduser()
    except RuntimeError:
        user = text[1:].partition("/")[0] or "the current user"
        raise Invalid(f"cannot expand ~: no home directory for {user}, got {show(node)}") from None


def command(node: yaml.Node, shell: bool) -> tuple[str, ...]:
    """argv: a list as given, or a string split the way a shell would (run by one when *shell*)."""
    if shell:
        text = text_of(node)
        if text is None or not text.strip():
            raise Invalid(f"expected a shell command string (shell: true), got {show(node)}")
        return fits_exec(("/bin/sh", "-c", usable(text, node)), node)
    if isinstance(node, yaml.ScalarNode):
        text = string(node)
        if len(text) > bounds.arg_max():  # no need to split what cannot be run
            raise Invalid(
                f"a command can be at most {bounds.arg_max()} bytes (ARG_MAX), "
                f"got {len(text)} characters"
            )
        try:
            argv = tuple(split_command(text))
        except SplitError as error:
            raise Invalid(f"cannot split the command: {error}") from None
    else:
        argv = strings(node)
    if not argv:
        raise Invalid(f"expected a command, got {show(node)}")
    return fits_exec(argv, node)


def fits_exec(
    argv: tuple[str, ...], node: yaml.Node, env: tuple[tuple[str, str], ...] = ()
) -> tuple[str, ...]:
    """*argv*, refused when the kernel would refuse to exec it (E2BIG) with *env* added:
    one argument of more than MAX_ARG_STRLEN bytes, or all of them beyond ARG_MAX."""
    sizes = [len(arg.encode("utf-8")) + 1 for arg in argv]
    longest = max(sizes, default=0)
    if longest > bounds.MAX_ARG_STRLEN:
        raise Invalid(
            f"a command argument can be at most {bounds.MAX_ARG_STRLEN - 1} bytes, "
            f"got one of {longest - 1} bytes",
            node,
        )
    room = bounds.arg_max() - bounds.ARG_RESERVE
    strings = [*argv, *(f"{name}={value}" for name, value in env)]
    total = sum(len(text.encode("utf-8")) + 1 + bounds.POINTER_SIZE for text in strings)
    if total > room:
        what = "a command and its env" if env else "a command"
        raise Invalid(f"{what} can be at most {room} bytes (ARG_MAX), got {total} bytes", node)
    return argv


def env_name(node: yaml.Node) -> str:
    name = str(node.value)
    if not _ENV_NAME.fullmatch(name):
        raise Invalid(f'expected a variable name like "PYTHONPATH", got "{name}"', node)
    return name


def env_value(node: yaml.Node) -> str:
    """One variable's value, taken as written: ``1`` is ``"1"``, ``yes`` is ``"yes"``."""
    text = text_of(node)
    if text is None:
        raise Invalid(f"expected a string, got {show(node)}")
    return usable(text, node)


def signal_name(node: yaml.Node) -> signal.Signals:
    return _signal(text_of(node) or "", node)


def _signal(text: str, node: yaml.Node) -> signal.Signals:
    name = text.strip().upper()
    name = name if name.startswith("SIG") else f"SIG{name}"
    try:
        return signal.Signals[name]
    except KeyError:
        raise Invalid(f'expected a signal name like "SIGHUP", got {show(node)}') from None


def on_change(node: yaml.Node) -> OnChange:
    text = (text_of(node) or "").strip()
    if text in ("restart", "none"):
        return OnChange(ChangeAction(text))
    if value_of(node) is False:  # ``on_change: no`` reads as a boolean in YAML 1.1
        return OnChange(ChangeAction.NONE)
    verb, _, rest = text.partition(" ")
    if verb == "signal" and rest.strip():
        try:
            return OnChange(ChangeAction.SIGNAL, _signal(rest, node))
        except Invalid:
            message = f'expected "signal" and a signal name like "SIGHUP", got {show(node)}'
            raise Invalid(message) from None
    raise Invalid(f'expected restart, none or "signal SIGHUP", got {show(node)}')


def exit_codes(node: yaml.Node) -> tuple[int, ...]:
    items = node.value if isinstance(node, yaml.SequenceNode) else [node]
    codes = []
    for item in items:
        try:
            codes.append(integer(item, 0, 255))
        except Invalid:
            raise Invalid(
                f"expected an exit status from 0 to 255, got {show(item)}", item
            ) from None
    return tuple(codes)


def user(node: yaml.Node) -> str:
    name = string(node)
    try:
        pwd.getpwuid(int(name)) if name.isdigit() else pwd.getpwnam(name)
    except KeyError:
        raise Invalid(f"expected a user that exists on this system, got {show(node)}") from None
    return name


def group(node: yaml.Node) -> str:
    name = string(node)
    try:
        grp.getgrgid(int(name)) if name.isdigit() else grp.getgrnam(name)
    except KeyError:
        raise Invalid(f"expected a group that exists on this system, got {show(node)}") from None
    return name


def output(node: yaml.Node) -> Output:
    """``log`` (the daemon's log and the job's buffer), ``null`` (discard), or a file to append.

    ``null`` is YAML's own null too, so ``output: null`` unquoted means discard; an empty
    ``output:`` is still an error.
    """
    if is_null(node) and node.value:
        return NullOutput()
    text = string(node)
    if text == "log":
        return LogOutput()
    if text == "null":
        return NullOutput()
    return FileOutput(path(node))


def file_mode(node: yaml.Node) -> int:
    """Permission bits, always read as octal: ``0660``, ``660`` and ``"0o660"`` are the same."""
    text = (text_of(node) or "").strip().lower().removeprefix("0o")
    try:
        mode = int(text, 8)
    except ValueError:
        mode = -1
    if not 0 <= mode <= 0o777:
        raise Invalid(f'expected permission bits like "0660", got {show(node)}')
    return mode

"""YAML read as marked nodes, so every value can be traced back to file, line and column."""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from watchd.errors import ConfigIssue

_SCALARS = yaml.constructor.SafeConstructor()
_NULL = "tag:yaml.org,2002:null"


class Invalid(ValueError):
    """A value is wrong; *node* (when given) points more precisely than the key's value, and
    *where* (``[0].tcp``) names the part of the value, after the key's own path."""

    def __init__(
        self,
        message: str,
        node: yaml.Node | None = None,
        where: str = "",
        more: tuple[Invalid, ...] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.node = node
        self.where = where
        self.more = more  # further problems in the same value (items of a list)


def shown(path: Path) -> Path:
    """*path* as the user should read it: relative when it lies under the working directory."""
    cwd = Path.cwd()
    if cwd == Path("/") or not path.is_relative_to(cwd):
        return path
    return path.relative_to(cwd)


def source_of(node: yaml.Node) -> Path:
    """The absolute path of the file *node* was read from."""
    return Path(node.start_mark.name)


@dataclass
class Issues:
    """Every problem found so far; loading goes on after one, so the user sees them all."""

    found: list[ConfigIssue] = field(default_factory=list)

    def at(self, node: yaml.Node, key: str, message: str) -> None:
        mark = node.start_mark
        self.found.append(
            ConfigIssue(shown(source_of(node)), mark.line + 1, mark.column + 1, key, message)
        )

    def in_file(self, path: Path, message: str, line: int = 0, column: int = 0) -> None:
        self.found.append(ConfigIssue(shown(path), line, column, "", message))


def read_regular_file(path: Path) -> str:
    """The text of *path*, which must be a regular file: a FIFO named ``*.yaml`` would
    block the read until some writer came, a device might never end."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    with open(fd, "rb") as file:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = _KINDS.get(stat.S_IFMT(mode), "special file")
            raise OSError(errno.EINVAL, f"not a regular file (a {kind})")
        return file.read().decode("utf-8")


_KINDS = {
    stat.S_IFIFO: "FIFO",
    stat.S_IFDIR: "directory",
    stat.S_IFCHR: "character device",
    stat.S_IFBLK: "block device",
    stat.S_IFSOCK: "socket",
}


def compose(path: Path, issues: Issues) -> yaml.Node | None:
    """The single document in *path* as nodes; ``None`` for an empty or unreadable file."""
    try:
        text = read_regular_file(path)
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        issues.in_file(path, f"cannot read: {reason}")
        return None
    loader = yaml.SafeLoader(text)
    loader.name = os.fspath(path)  # every mark of every node now names this file
    try:
        return loader.get_single_node()
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        problem = " ".join(part for part in (error.context, error.problem) if part)
        if mark is None:
            issues.in_file(path, f"invalid YAML: {problem}")
        else:
            issues.in_file(path, f"invalid YAML: {problem}", mark.line + 1, mark.column + 1)
        return None
    except yaml.YAMLError as error:
        issues.in_file(path, f"invalid YAML: {error}")
        return None
    finally:
        loader.dispose()


def value_of(node: yaml.Node) -> object:
    """The plain Python value of *node* (YAML 1.1 typing: ``yes`` is True, ``0660`` octal)."""
    try:
        return _SCALARS.construct_object(node, deep=True)
    finally:
        # The constructor remembers every node it built; a daemon reloads for months.
        _SCALARS.constructed_objects.clear()


def is_null(node: yaml.Node) -> bool:
    """``~``, ``null`` or nothing at all after the colon."""
    return bool(node.tag == _NULL)


def text_of(node: yaml.Node) -> str | None:
    """A scalar exactly as written (``1`` stays ``"1"``, ``yes`` stays ``"yes"``), else None."""
    if isinstance(node, yaml.ScalarNode) and not is_null(node):
        return str(node.value)
    return None


def show(node: yaml.Node) -> str:
    """How a wrong value is quoted back in an error message."""
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    if is_null(node):
        return "nothing"
    if node.tag == "tag:yaml.org,2002:str":
        return f'"{node.value}"'
    return str(node.value)


def mapping(
    node: yaml.Node, key_path: str, issues: Issues
) -> dict[str, tuple[yaml.ScalarNode, yaml.Node]] | None:
    """The string-keyed entries of a mapping node; duplicates and odd keys are reported."""
    if not isinstance(node, yaml.MappingNode):
        issues.at(node, key_path, f"expected a mapping, got {show(node)}")
        return None
    entries: dict[str, tuple[yaml.ScalarNode, yaml.Node]] = {}
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode) or is_null(key_node):
            issues.at(key_node, key_path, f"expected a key name, got {show(key_node)}")
            continue
        key = str(key_node.value)
        if key in entries:
            first = entries[key][0].start_mark.line + 1
            issues.at(key_node, dotted(key_path, key), f"duplicate key (first set on line {first})")
            continue
        entries[key] = (key_node, value_node)
    return entries


def dotted(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key

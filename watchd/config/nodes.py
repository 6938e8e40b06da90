"""YAML read as marked nodes, so every value can be traced back to file, line and column."""

from __future__ import annotations

import errno
import io
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from watchd.config import bounds
from watchd.errors import ConfigIssue

_SCALARS = yaml.constructor.SafeConstructor()
_YAML_TAG = "tag:yaml.org,2002:"
_NULL = _YAML_TAG + "null"
# What plain YAML can mean without a tag (``<<`` is a merge key, ``2001-12-14`` a date);
# ``!!binary``, ``!!set``, ``!!python/…`` and local tags are refused.
_SUPPORTED_TAGS = {
    _YAML_TAG + name
    for name in ("str", "int", "float", "bool", "null", "timestamp", "merge", "value", "seq", "map")
}
# The longest a wrong value or key is quoted back in an error message.
SHOWN_MAX = 80
# How deep the pure-Python composer (which recurses) may go; libyaml stops at 1000 itself.
PURE_PYTHON_DEPTH = 200


class _DepthLimitedLoader(yaml.SafeLoader):
    _depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self._depth >= PURE_PYTHON_DEPTH:
            mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
            message = f"nested deeper than {PURE_PYTHON_DEPTH} levels"
            raise yaml.composer.ComposerError(None, None, message, mark)
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


# libyaml when PyYAML has it: 40 times faster on a large file.
_Loader: Any = getattr(yaml, "CSafeLoader", _DepthLimitedLoader)


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
        file = shown(source_of(node))
        self.found.append(
            ConfigIssue(file, mark.line + 1, mark.column + 1, printable(key), printable(message))
        )

    def in_file(self, path: Path, message: str, line: int = 0, column: int = 0) -> None:
        self.found.append(ConfigIssue(shown(path), line, column, "", printable(message)))


def printable(text: str, limit: int | None = None) -> str:
    """*text* safe to print on one line of a UTF-8 terminal: control characters and lone
    surrogates escaped, and (given a *limit*) cut short."""
    if limit is not None and len(text) > limit:
        text = text[:limit] + "…"
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def read_regular_file(path: Path) -> bytes:
    """The bytes of *path*, which must be a regular file: a FIFO named ``*.yaml`` would
    block the read until some writer came, a device might never end. A file too large to
    be a config is refused unread (Invalid)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    with open(fd, "rb") as file:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = _KINDS.get(stat.S_IFMT(mode), "special file")
            raise OSError(errno.EINVAL, f"not a regular file (a {kind})")
        data = file.read(bounds.FILE_BYTES_MAX + 1)
    if len(data) > bounds.FILE_BYTES_MAX:
        raise Invalid(f"larger than {bounds.FILE_BYTES_MAX // (1024 * 1024)} MiB; not a config")
    return data


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
        data = read_regular_file(path)
    except OSError as error:
        issues.in_file(path, f"cannot read: {error.strerror or error}")
        return None
    except Invalid as error:
        issues.in_file(path, error.message)
        return None
    text = decode(path, data, issues)
    if text is None:
        return None
    root = parse(path, text, issues)
    if root is not None and not tags_supported(root, issues):
        return None
    return root


def decode(path: Path, data: bytes, issues: Issues) -> str | None:
    """*data* as UTF-8 text; a byte that is not is reported by line and column."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line, column = _line_column(data, error.start)
        issues.in_file(path, f"not UTF-8 text: byte 0x{data[error.start]:02x}", line, column)
        return None


def _line_column(data: bytes, offset: int) -> tuple[int, int]:
    """1-based line and column (in characters) of the byte at *offset* of UTF-8 *data*."""
    line_start = data.rfind(b"\n", 0, offset) + 1
    column = len(data[line_start:offset].decode("utf-8", "replace"))
    return data.count(b"\n", 0, offset) + 1, column + 1


def parse(path: Path, text: str, issues: Issues) -> yaml.Node | None:
    """Compose *text*; a YAML error is reported where it is, never raised."""
    loader = _Loader(_Named(text, os.fspath(path)))  # every node's marks now name this file
    try:
        root: yaml.Node | None = loader.get_single_node()
        return root
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        problem = " ".join(part for part in (error.context, error.problem) if part)
        if mark is None:
            issues.in_file(path, f"invalid YAML: {problem}", 1, 1)
        else:
            issues.in_file(path, f"invalid YAML: {problem}", mark.line + 1, mark.column + 1)
    except yaml.reader.ReaderError as error:
        # libyaml counts bytes of the UTF-8 text here, the pure-Python reader characters.
        offset = error.position
        data = text.encode("utf-8")
        if _Loader is _DepthLimitedLoader:
            offset = len(text[:offset].encode("utf-8"))
        line, column = _line_column(data, offset)
        what = f"#x{error.character:04x}" if isinstance(error.character, int) else "character"
        issues.in_file(path, f"invalid YAML: {error.reason} ({what})", line, column)
    except yaml.YAMLError as error:
        issues.in_file(path, f"invalid YAML: {error}", 1, 1)
    finally:
        loader.dispose()
    return None


class _Named(io.StringIO):
    """Text that libyaml's parser takes the file name from (for every mark)."""

    def __init__(self, text: str, name: str) -> None:
        super().__init__(text)
        self.name = name


def tags_supported(root: yaml.Node, issues: Issues) -> bool:
    """False (and reported) when a node has an explicit tag the config cannot mean, such as
    ``!!python/object`` or a local ``!tag``. Aliases may make a graph: each node once."""
    seen: set[int] = set()
    pending = [root]
    ok = True
    while pending:
        node = pending.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if node.tag not in _SUPPORTED_TAGS:
            issues.at(node, "", f"unsupported tag {_short_tag(node.tag)}")
            ok = False
        if isinstance(node, yaml.SequenceNode):
            pending.extend(node.value)
        elif isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                pending.extend((key, value))
    return ok


def _short_tag(tag: str) -> str:
    return "!!" + tag.removeprefix(_YAML_TAG) if tag.startswith(_YAML_TAG) else tag


def value_of(node: yaml.Node) -> object:
    """The plain Python value of a scalar (YAML 1.1 typing: ``yes`` is True, ``0660`` octal);
    ``None`` for a list or mapping. A scalar YAML cannot make a value of (``!!int 12x``, an
    integer of 5,000 digits, ``!!timestamp soon``) raises Invalid."""
    if not isinstance(node, yaml.ScalarNode):
        return None
    if node.tag == _YAML_TAG + "int" and len(node.value) > bounds.INT_DIGITS_MAX:
        raise Invalid(
            f"expected a number of at most {bounds.INT_DIGITS_MAX} digits, got {show(node)}"
        )
    try:
        return _SCALARS.construct_object(node)
    except Exception:  # PyYAML's constructors fail in many ways (KeyError, ValueError, …)
        raise Invalid(f"not a valid {_short_tag(node.tag)}: {show(node)}") from None
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
    text = printable(str(node.value), SHOWN_MAX)
    return f'"{text}"' if node.tag == _YAML_TAG + "str" else text


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

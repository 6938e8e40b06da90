"""A command string split into argv the way ``shlex.split`` does, in linear time.

``shlex`` grows each word one character at a time, which takes seconds on a long command;
this reads whole runs of characters with regular expressions instead.
"""

from __future__ import annotations

import re

# The pieces of words: plain characters, a '…' or "…" string, a backslash escape; and the
# whitespace between words (shlex's whitespace is exactly these four characters).
_ALTERNATIVES = (
    r"""[^ \t\r\n'"\\]++""",
    r"""'[^']*+'""",
    r""""(?:[^"\\]++|\\.)*+\"""",
    r"""\\.""",
    r"""[ \t\r\n]++""",
)
# Each group keeps its quotes, so a matched group is never empty (``''`` is a word).
_TOKEN = re.compile("|".join(f"({piece})" for piece in _ALTERNATIVES), re.DOTALL)
# Without groups: a possessive repeat of capturing groups trips a bug in Python 3.11's re.
_WELL_FORMED = re.compile(f"(?:{'|'.join(_ALTERNATIVES)})*+", re.DOTALL)
_QUOTING = re.compile(r"""['"\\]""")
_SPACE = re.compile(r"[ \t\r\n]+")
# Inside "…", a backslash escapes only a double quote or itself (as in shlex's POSIX mode).
_DOUBLE_ESCAPE = re.compile(r'\\([\\"])')


class SplitError(ValueError):
    """The string cannot be split; *column* (1-based) is where the trouble starts."""

    def __init__(self, message: str, column: int) -> None:
        super().__init__(message)
        self.column = column


def split_command(text: str) -> list[str]:
    """``shlex.split(text)``: the same words; its errors raise SplitError."""
    if not _QUOTING.search(text):
        return [word for word in _SPACE.split(text) if word]  # the common case, all in C
    well_formed = _WELL_FORMED.match(text)
    end = well_formed.end() if well_formed else 0  # (it matches "" at least)
    if end < len(text):
        if text[end] == "\\":
            raise SplitError(f"no character after the backslash at column {end + 1}", end + 1)
        raise SplitError(f"no closing quotation for the {text[end]} at column {end + 1}", end + 1)
    words: list[str] = []
    parts: list[str] = []
    in_word = False
    for plain, single, double, escaped, space in _TOKEN.findall(text):
        if space:
            if in_word:
                words.append("".join(parts))
                parts, in_word = [], False
            continue
        in_word = True
        if plain:
            parts.append(plain)
        elif single:
            parts.append(single[1:-1])
        elif double:
            parts.append(
                _DOUBLE_ESCAPE.sub(r"\1", double[1:-1]) if "\\" in double else double[1:-1]
            )
        else:
            parts.append(escaped[1])
    if in_word:
        words.append("".join(parts))
    return words

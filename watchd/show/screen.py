"""One text shown again and again (``watchctl status --watch``): redrawn in place on a
terminal, one after the other with a blank line between them elsewhere (a pipe, a file)."""

from __future__ import annotations

import shutil
from typing import TextIO

_HOME = "\033[H"  # cursor to the top left
_CLEAR = "\033[2J"  # the whole screen
_CLEAR_EOL = "\033[K"  # the rest of the line
_CLEAR_BELOW = "\033[J"  # the rest of the screen
_NO_WRAP, _WRAP = "\033[?7l", "\033[?7h"  # a long line is cut at the edge, not wrapped
_HIDE, _SHOW = "\033[?25l", "\033[?25h"  # the cursor


class Screen:
    def __init__(self, out: TextIO, terminal: bool) -> None:
        self._out = out
        self.terminal = terminal
        self._size: tuple[int, int] | None = None
        self._shown = 0

    def show(self, text: str) -> None:
        if not self.terminal:
            self._out.write(("\n" if self._shown else "") + text + "\n")
        else:
            self._out.write(self._frame(text.splitlines()))
        self._shown += 1
        self._out.flush()

    def _frame(self, lines: list[str]) -> str:
        size = shutil.get_terminal_size()
        start = ""
        if (size.columns, size.lines) != self._size:  # the first frame, or resized
            start = _NO_WRAP + _HIDE + _CLEAR
            self._size = (size.columns, size.lines)
        room = max(size.lines - 1, 1)  # the last row stays free: writing there would scroll
        if len(lines) > room:
            lines = [*lines[: room - 1], f"… {len(lines) - room + 1} more lines below"]
        # Over the last frame, each line cleared to its end, then what is left below.
        return start + _HOME + "".join(f"{line}{_CLEAR_EOL}\n" for line in lines) + _CLEAR_BELOW

    def close(self) -> None:
        """Leave the terminal as it was (wrapping, cursor), the last frame on it."""
        if self.terminal and self._size is not None:
            self._out.write(_WRAP + _SHOW)
            self._out.flush()

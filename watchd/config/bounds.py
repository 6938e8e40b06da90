"""Bounds on what a config may ask for: each is far above any real use, and keeps a hostile
or mistyped value from costing unbounded memory or time, or failing only once it is used."""

from __future__ import annotations

import os

# A config file (main or job) is read whole; a job file of thousands of jobs is well under 1 MiB.
FILE_BYTES_MAX = 16 * 1024 * 1024
# Digits in a number (Python itself refuses to read more than 4,300).
INT_DIGITS_MAX = 100
# Output lines kept per job, and failures counted by the start limit.
LOG_LINES_MAX = 1_000_000
START_LIMIT_BURST_MAX = 1_000_000
# The longest duration: a year, the same for every timer.
DURATION_MAX = 365 * 24 * 3600.0

# execve(2): one argument or variable may hold 32 pages; all of them together, with a
# pointer each, ARG_MAX bytes (a quarter of the stack limit). Room is left for what watchd
# adds to a child's environment and what it inherits itself.
MAX_ARG_STRLEN = 32 * os.sysconf("SC_PAGESIZE")
POINTER_SIZE = 8
ARG_RESERVE = 64 * 1024


def arg_max() -> int:
    """ARG_MAX now: it follows the stack limit, which may change between reloads."""
    return int(os.sysconf("SC_ARG_MAX"))

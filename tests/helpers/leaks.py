"""Fail a test that leaves processes behind (and kill them, so the next test starts clean)."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable, Iterator

import pytest

from tests.helpers.wait import wait_until


@contextlib.contextmanager
def no_new_processes(live: Callable[[], set[int]]) -> Iterator[None]:
    """Around a test: every process *live* lists afterwards must have been there before."""
    before = live()
    yield
    try:
        wait_until(lambda: not (live() - before), "the test's child processes to exit", 5)
    except AssertionError:
        leaked = live() - before
        for pid in leaked:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        pytest.fail(f"test leaked child processes: {sorted(leaked)}")

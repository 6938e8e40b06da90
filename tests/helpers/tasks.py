"""Catch asyncio tasks a test leaves running when its ``asyncio.run`` scenario returns.

``asyncio.run`` cancels whatever is still pending when its main coroutine ends, so a task
nobody awaited or closed (a forgotten watcher, a timer's follow-up) would pass unseen. The
loops made here note those tasks just before that clean-up.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class _NotingLoop(asyncio.SelectorEventLoop):
    def __init__(self, left_running: list[str]) -> None:
        super().__init__()
        self._left_running = left_running
        self._scenario_ran = False

    def run_until_complete(self, future: Any) -> Any:
        scenario = not self._scenario_ran  # later calls are asyncio.run's own clean-up
        self._scenario_ran = True
        result = super().run_until_complete(future)
        if scenario:
            for task in asyncio.all_tasks(self):
                if not task.done():
                    self._left_running.append(f"{task.get_name()}: {task.get_coro()!r}")
        return result


class _NotingPolicy(asyncio.DefaultEventLoopPolicy):
    def __init__(self, left_running: list[str]) -> None:
        super().__init__()
        self._left_running = left_running

    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        return _NotingLoop(self._left_running)


@contextmanager
def no_tasks_left_running() -> Iterator[list[str]]:
    """Yields the list of tasks found still running when a scenario's main task ended."""
    left_running: list[str] = []
    previous = asyncio.get_event_loop_policy()
    asyncio.set_event_loop_policy(_NotingPolicy(left_running))
    try:
        yield left_running
    finally:
        asyncio.set_event_loop_policy(previous)

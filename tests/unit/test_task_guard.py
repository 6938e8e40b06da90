"""The guard that fails a test whose scenario leaves asyncio tasks running."""

from __future__ import annotations

import asyncio

from tests.helpers.tasks import no_tasks_left_running


def test_a_task_still_running_when_the_scenario_returns_is_caught() -> None:
    async def forgotten() -> None:
        await asyncio.sleep(3600)

    async def scenario() -> None:
        asyncio.get_running_loop().create_task(forgotten(), name="forgotten watcher")
        await asyncio.sleep(0)

    with no_tasks_left_running() as left_running:
        asyncio.run(scenario())
    assert [entry.split(":")[0] for entry in left_running] == ["forgotten watcher"]


def test_tasks_awaited_or_cancelled_before_the_end_are_not() -> None:
    async def scenario() -> None:
        finished = asyncio.get_running_loop().create_task(asyncio.sleep(0))
        cancelled = asyncio.get_running_loop().create_task(asyncio.sleep(3600))
        await finished
        cancelled.cancel()
        await asyncio.wait([cancelled])

    with no_tasks_left_running() as left_running:
        asyncio.run(scenario())
    assert left_running == []

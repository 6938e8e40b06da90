"""The loop-side debounce: a burst of pokes is one call, on a real event loop."""

from __future__ import annotations

import asyncio

from tests.helpers.wait import async_wait_until
from watchd.watch.debounced import DebouncedCall


def test_a_burst_of_pokes_is_one_call_and_a_later_poke_another() -> None:
    calls: list[float] = []

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        call = DebouncedCall(0.05, 10.0, lambda: calls.append(loop.time()))
        first = loop.time()
        for _ in range(200):
            call.poke()
            await asyncio.sleep(0)
        last = loop.time()
        await async_wait_until(lambda: calls, "the call")
        assert not call.pending  # nothing left that could call again
        assert calls[0] >= last + 0.05 > first
        call.poke()
        await async_wait_until(lambda: len(calls) == 2, "the second call")
        assert not call.pending

    asyncio.run(scenario())


def test_pokes_that_never_pause_are_still_called_once_the_cap_is_up() -> None:
    calls: list[float] = []

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        call = DebouncedCall(0.5, 1.0, lambda: calls.append(loop.time()))
        started = loop.time()
        while not calls:  # a poke every 10 ms: the quiet window alone would never end
            call.poke()
            await asyncio.sleep(0.01)
        assert calls[0] >= started + 0.5
        call.cancel()

    asyncio.run(scenario())


def test_a_cancelled_burst_is_never_called() -> None:
    calls: list[str] = []

    async def scenario() -> None:
        call = DebouncedCall(0.01, 0.01, lambda: calls.append("called"))
        call.poke()
        call.cancel()
        assert not call.pending
        await asyncio.sleep(0.1)  # well past the deadline the cancelled timer had
        assert calls == []

    asyncio.run(scenario())

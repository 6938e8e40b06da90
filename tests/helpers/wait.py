"""Waiting for what a test expects, instead of sleeping and hoping."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

# Generous: these machines have 2 cores and are noisy. A passing test never waits this long.
DEFAULT_TIMEOUT = 20.0


def wait_until(
    predicate: Callable[[], T], what: str, timeout: float = DEFAULT_TIMEOUT, step: float = 0.01
) -> T:
    """Call *predicate* until it returns something truthy; return that, or fail saying *what*."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(step)


async def async_wait_until(
    predicate: Callable[[], T], what: str, timeout: float = DEFAULT_TIMEOUT, step: float = 0.01
) -> T:
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(step)


async def wait_for(awaitable: Awaitable[T], what: str, timeout: float = DEFAULT_TIMEOUT) -> T:
    try:
        return await asyncio.wait_for(awaitable, timeout)
    except TimeoutError:
        raise AssertionError(f"timed out after {timeout}s waiting for {what}") from None

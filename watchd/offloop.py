"""Blocking calls run off the event loop, in a thread nothing ever waits to join."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


async def off_loop(function: Callable[[], T], timeout: float, name: str = "off-loop") -> T:
    """The result of *function()*, called in a daemon thread; TimeoutError after *timeout*.

    Unlike ``asyncio.to_thread``, a call that never returns (a read from a hung file
    system) holds up nothing: not the caller past *timeout*, and not the interpreter's
    exit, which would otherwise join the default executor's threads and wait forever.
    The abandoned thread ends with the process.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(result: T | None, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    def run() -> None:
        result: T | None = None
        error: BaseException | None = None
        try:
            result = function()
        except BaseException as caught:
            error = caught
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=run, name=name, daemon=True).start()
    return await asyncio.wait_for(future, timeout)

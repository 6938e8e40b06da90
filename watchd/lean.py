"""Imported first by the daemon's command line: asyncio and hashlib without OpenSSL.

asyncio imports ``ssl`` for TLS transports, which the daemon never opens, and hashlib
loads OpenSSL's libcrypto for a digest it also has built in (sha256, for a cgroup's
name): with libssl, about 4 MB of resident memory at any tree size. Each is imported
here while the OpenSSL module is hidden, so it takes OpenSSL to be unavailable; importing
``ssl`` or ``_hashlib`` later works as usual (for anything that does want them). Where a
module is already loaded (a test process, an application embedding watchd), nothing
changes.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def import_without(module: str, hidden: str) -> None:
    if module in sys.modules or hidden in sys.modules:
        return
    sys.modules[hidden] = None  # type: ignore[assignment]  # an import of it fails
    try:
        importlib.import_module(module)
    finally:
        del sys.modules[hidden]


def asyncio_run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run``, for a module that must not import asyncio before this one has."""
    import asyncio  # noqa: PLC0415

    return asyncio.run(main)


import_without("asyncio", "ssl")
import_without("hashlib", "_hashlib")

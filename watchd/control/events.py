"""``events``: the daemon's event history, then (with ``follow``) each new event.

The replay comes in pages (``"more": true`` on all but the last), each ``{"ok": true,
"events": [...]}``; a follower then gets one ``{"event": {...}}`` per event. Where events
were dropped (from the history before a ``since`` reader asked, or from a follower's
backlog because it read too slowly) the reader gets a gap record instead:
``{"seq": null, "kind": "gap", "missed": N, ...}``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from watchd.control.follow import Gap
from watchd.control.protocol import Request, pages
from watchd.control.server import Reply
from watchd.control.streams import Follower
from watchd.observe.history import Event, History, gap_line


async def send_events(history: History, request: Request, reply: Reply) -> None:
    names = frozenset(request.jobs)

    def wanted(event: Event) -> bool:
        return not names or event.job in names

    follower = Follower[str]() if request.follow else None
    unlisten = None
    if follower is not None:
        # Listening before the replay is taken, with no wait between: nothing falls between.
        def on_event(event: Event, details: Mapping[str, Any]) -> None:
            if wanted(event):
                follower.put(event.line)

        unlisten = history.listen(on_event)
    try:
        await _replay(history, request, wanted, reply)
        if follower is not None:
            await follower.pump(reply, _follow_message)
    finally:
        if unlisten is not None:
            unlisten()


async def _replay(history: History, request: Request, wanted: Any, reply: Reply) -> None:
    if request.since is not None:
        missed, events = history.since(request.since)
    else:
        missed, events = 0, history.since(0)[1]
    lines = [event.line for event in events if wanted(event)]
    if request.lines is not None:
        lines = lines[-request.lines :] if request.lines else []
    if missed:
        lines.insert(0, gap_line(missed, time.time()))
    chunks = pages(lines)
    for number, chunk in enumerate(chunks, 1):
        more = {"more": True} if number < len(chunks) else {}
        await reply.send({"ok": True, "events": [json.loads(line) for line in chunk], **more})


def _follow_message(item: str | Gap) -> dict[str, Any]:
    line = gap_line(item.missed, time.time()) if isinstance(item, Gap) else item
    return {"event": json.loads(line)}

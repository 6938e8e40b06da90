"""The control socket's server: a Unix socket, peer credentials, request limits."""

from __future__ import annotations

import asyncio
import contextlib
import grp
import logging
import os
import socket
import struct
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from watchd.control import socketfile
from watchd.control.protocol import (
    MAX_CONNECTIONS,
    MAX_CONNECTIONS_PER_UID,
    MAX_REQUEST,
    MUTATING,
    REQUEST_TIMEOUT,
    WRITE_TIMEOUT,
    ProtocolError,
    Request,
    encode,
    error_reply,
    parse_request,
)

log = logging.getLogger("watchd.control")

ACCEPT_BATCH = 64  # connections taken per wake-up, so that a flood cannot starve the loop
ACCEPT_PAUSE = 0.5  # seconds without accepting after running out of descriptors
WARN_EVERY = 60.0  # seconds between two warnings about that


@dataclass(frozen=True)
class Peer:
    pid: int
    uid: int
    gid: int

    def groups(self) -> set[int]:
        """The peer's primary and supplementary groups (from /proc, while it lives)."""
        found = {self.gid}
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("Groups:"):
                    found |= {int(word) for word in line.split()[1:]}
        return found


def peer_of(sock: socket.socket) -> Peer:
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, gid = struct.unpack("3i", raw)
    return Peer(pid, uid, gid)


class ClientStalled(ConnectionError):
    """The client stopped reading its replies; the connection was cut."""


class Reply:
    """Where a command writes its replies: one JSON object per line."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self._writer = writer

    async def send(self, message: dict[str, Any], timeout: float | None = WRITE_TIMEOUT) -> None:
        """Write one reply; a client that does not take it within *timeout* is cut off."""
        self._writer.write(encode(message))
        try:
            await asyncio.wait_for(self._writer.drain(), timeout)
        except TimeoutError:
            self._writer.transport.abort()
            raise ClientStalled(f"the client read nothing for {timeout:g}s") from None


Execute = Callable[[Request, Reply], Awaitable[None]]


class ControlServer:
    def __init__(self, path: Path, group: str | None, mode: int, execute: Execute) -> None:
        self.path = path
        self._group = group
        self._mode = mode
        self._execute = execute
        self._socket: socketfile.SocketFile | None = None
        self._resume: asyncio.TimerHandle | None = None
        self._warned_at = -WARN_EVERY
        self._clients: set[asyncio.Task[Any]] = set()
        self._per_uid: Counter[int] = Counter()
        self._group_id = _group_id(group)

    async def start(self) -> None:
        """Make the socket (raises SocketPathError where that is not safe) and serve it."""
        made = socketfile.create(self.path, self._mode, self._group_id)
        if made.group_refused:
            log.warning("cannot give %s to group %s: not permitted", self.path, self._group)
        self._socket = made
        made.sock.setblocking(False)
        asyncio.get_running_loop().add_reader(made.sock, self._accept)
        log.info("control socket at %s", self.path)

    async def close(self) -> None:
        if self._resume is not None:
            self._resume.cancel()
        if self._socket is not None:
            asyncio.get_running_loop().remove_reader(self._socket.sock)
            self._socket.sock.close()
        for task in list(self._clients):
            task.cancel()
        await asyncio.gather(*self._clients, return_exceptions=True)
        if self._socket is not None:
            self._socket.remove()
            self._socket = None

    def may_change(self, peer: Peer) -> bool:
        if self._trusted(peer):
            return True
        return self._group_id is not None and self._group_id in peer.groups()

    def _trusted(self, peer: Peer) -> bool:
        return peer.uid in (0, os.geteuid())

    def _refusal(self, peer: Peer) -> str | None:
        """Why this connection is one too many, or None. Root and watchd's user are never
        refused, so no one else can crowd them out."""
        if self._trusted(peer):
            return None
        if self._per_uid[peer.uid] >= MAX_CONNECTIONS_PER_UID:
            return f"too many connections from uid {peer.uid} (at most {MAX_CONNECTIONS_PER_UID})"
        others = sum(n for uid, n in self._per_uid.items() if uid not in (0, os.geteuid()))
        if others >= MAX_CONNECTIONS:
            return f"too many connections (at most {MAX_CONNECTIONS})"
        return None

    def _accept(self) -> None:
        """Take waiting connections; count or refuse each at once, before it costs more than
        its descriptor, so that a burst cannot get past the caps."""
        assert self._socket is not None
        loop = asyncio.get_running_loop()
        for _ in range(ACCEPT_BATCH):
            try:
                conn, _ = self._socket.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as error:  # out of descriptors or memory: wait, do not spin
                self._pause(error)
                return
            peer = peer_of(conn)
            refusal = self._refusal(peer)
            if refusal is not None:
                with contextlib.suppress(OSError):  # never wait on this client
                    conn.send(
                        encode(error_reply(f"{refusal}; try again later")), socket.MSG_DONTWAIT
                    )
                conn.close()
                continue
            self._per_uid[peer.uid] += 1
            task = loop.create_task(self._serve(conn, peer))
            self._clients.add(task)
            task.add_done_callback(self._clients.discard)

    def _pause(self, error: OSError) -> None:
        assert self._socket is not None
        loop = asyncio.get_running_loop()
        if loop.time() - self._warned_at >= WARN_EVERY:
            self._warned_at = loop.time()
            log.warning("control socket: cannot accept a connection (%s); pausing", error)
        loop.remove_reader(self._socket.sock)
        self._resume = loop.call_later(ACCEPT_PAUSE, self._resume_accepting)

    def _resume_accepting(self) -> None:
        self._resume = None
        if self._socket is not None and self._socket.sock.fileno() >= 0:
            asyncio.get_running_loop().add_reader(self._socket.sock, self._accept)

    async def _serve(self, conn: socket.socket, peer: Peer) -> None:
        writer: asyncio.StreamWriter | None = None
        try:
            reader, writer = await asyncio.open_unix_connection(sock=conn, limit=MAX_REQUEST)
            await self._converse(peer, Reply(reader, writer))
        except ClientStalled as error:
            log.info("control client uid %d cut off: %s", peer.uid, error)
        except (ConnectionError, asyncio.CancelledError):
            pass
        except Exception:
            log.exception("control connection failed")
        finally:
            self._per_uid[peer.uid] -= 1
            if not self._per_uid[peer.uid]:
                del self._per_uid[peer.uid]
            if writer is None:
                conn.close()
            else:
                writer.close()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(writer.wait_closed(), WRITE_TIMEOUT)

    async def _converse(self, peer: Peer, reply: Reply) -> None:
        while True:
            line = await self._read_request(reply)
            if line is None:
                return
            try:
                request = parse_request(line)
            except ProtocolError as error:
                await reply.send(error_reply(str(error)))
                continue
            if request.command in MUTATING and not self.may_change(peer):
                who = f"uid {peer.uid}"
                need = f"root or a member of group {self._group!r}" if self._group else "root"
                await reply.send(error_reply(f"permission denied: {who} is not {need}"))
                continue
            await self._answer(request, reply)

    async def _answer(self, request: Request, reply: Reply) -> None:
        """Run one request; a failure inside still gets a reply, and the connection lives."""
        try:
            await self._execute(request, reply)
        except (ConnectionError, asyncio.CancelledError):
            raise
        except Exception as error:
            log.exception("control request %r failed", request.command)
            await reply.send(error_reply(f"internal error in watchd: {error!r}"))

    async def _read_request(self, reply: Reply) -> bytes | None:
        """The next request line; None (after an error reply if due) to end the connection."""
        try:
            return await asyncio.wait_for(reply.reader.readuntil(b"\n"), REQUEST_TIMEOUT)
        except asyncio.IncompleteReadError as error:
            if error.partial.strip():
                await reply.send(error_reply("incomplete request: no newline before end of input"))
            return None
        except asyncio.LimitOverrunError:
            await reply.send(error_reply(f"request larger than {MAX_REQUEST // 1024} KiB"))
            return None
        except TimeoutError:
            await reply.send(error_reply(f"no complete request within {REQUEST_TIMEOUT:g}s"))
            return None


def _group_id(group: str | None) -> int | None:
    if group is None:
        return None
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        log.warning("control group %r does not exist; only root may change things", group)
        return None

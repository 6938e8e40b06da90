"""The control socket's server: a Unix socket, peer credentials, request limits."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import grp
import logging
import os
import socket
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from watchd.control.protocol import (
    MAX_REQUEST,
    MUTATING,
    REQUEST_TIMEOUT,
    ProtocolError,
    Request,
    encode,
    error_reply,
    parse_request,
)

log = logging.getLogger("watchd.control")


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


def peer_of(writer: asyncio.StreamWriter) -> Peer:
    sock: socket.socket = writer.get_extra_info("socket")
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, gid = struct.unpack("3i", raw)
    return Peer(pid, uid, gid)


class Reply:
    """Where a command writes its replies: one JSON object per line."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self._writer = writer

    async def send(self, message: dict[str, Any]) -> None:
        self._writer.write(encode(message))
        await self._writer.drain()


Execute = Callable[[Request, Reply], Awaitable[None]]


class ControlServer:
    def __init__(self, path: Path, group: str | None, mode: int, execute: Execute) -> None:
        self.path = path
        self._group = group
        self._mode = mode
        self._execute = execute
        self._server: asyncio.Server | None = None
        self._clients: set[asyncio.Task[Any]] = set()
        self._group_id = _group_id(group)

    async def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_socket(self.path)
        old_umask = os.umask(0o777 & ~self._mode)
        try:
            self._server = await asyncio.start_unix_server(
                self._serve, path=str(self.path), limit=MAX_REQUEST
            )
        finally:
            os.umask(old_umask)
        os.chmod(self.path, self._mode)
        if self._group_id is not None:
            try:
                os.chown(self.path, -1, self._group_id)
            except PermissionError:
                log.warning("cannot give %s to group %s: not permitted", self.path, self._group)
        log.info("control socket at %s", self.path)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for task in list(self._clients):
            task.cancel()
        await asyncio.gather(*self._clients, return_exceptions=True)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def may_change(self, peer: Peer) -> bool:
        if peer.uid in (0, os.geteuid()):
            return True
        return self._group_id is not None and self._group_id in peer.groups()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._clients.add(task)
        try:
            await self._converse(peer_of(writer), Reply(reader, writer))
        except (ConnectionError, asyncio.CancelledError):
            pass
        except Exception:
            log.exception("control connection failed")
        finally:
            self._clients.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

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
            await self._execute(request, reply)

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


def _remove_stale_socket(path: Path) -> None:
    """Remove a socket left by a watchd that died; refuse to steal a live one."""
    if not path.exists():
        return
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except OSError as error:
        if error.errno in (errno.ECONNREFUSED, errno.ENOENT, errno.ENOTSOCK):
            path.unlink(missing_ok=True)
            return
        raise
    finally:
        probe.close()
    raise OSError(errno.EADDRINUSE, f"another watchd is serving {path}")

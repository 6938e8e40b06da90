"""journald's native protocol, against a real datagram socket standing in for journald."""

from __future__ import annotations

import asyncio
import os
import socket
import struct
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.helpers.wait import async_wait_until
from watchd.journal import JournalSocket, encode


def decode(entry: bytes) -> dict[str, str]:
    """The native protocol read back the way journald reads it."""
    fields, position = {}, 0
    while position < len(entry):
        end = entry.index(b"\n", position)
        head = entry[position:end]
        if b"=" in head:
            name, _, value = head.partition(b"=")
            position = end + 1
        else:
            name = head
            (size,) = struct.unpack("<Q", entry[end + 1 : end + 9])
            value = entry[end + 9 : end + 9 + size]
            assert entry[end + 9 + size : end + 10 + size] == b"\n"
            position = end + 10 + size
        fields[name.decode()] = value.decode()
    return fields


@contextmanager
def fake_journald() -> Iterator[tuple[socket.socket, str]]:
    """A bound datagram socket that reads only when the test says so."""
    with tempfile.TemporaryDirectory(prefix="wj", dir="/tmp") as directory:
        address = os.path.join(directory, "socket")
        receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        receiver.bind(address)
        receiver.setblocking(False)
        try:
            yield receiver, address
        finally:
            receiver.close()


def receive_all(receiver: socket.socket) -> list[dict[str, str]]:
    entries = []
    try:
        while True:
            entries.append(decode(receiver.recv(1 << 20)))
    except BlockingIOError:
        return entries


def test_fields_are_encoded_as_journald_reads_them() -> None:
    fields = {
        "MESSAGE": "two\nlines and = signs",
        "PRIORITY": "6",
        "SYSLOG_IDENTIFIER": "wéb",
        "WATCHD_JOB": "wéb",
    }
    entry = encode(fields)
    assert entry.startswith(b"MESSAGE\n" + struct.pack("<Q", 21) + b"two\nlines and = signs\n")
    assert b"PRIORITY=6\n" in entry
    assert decode(entry) == fields


def test_a_flooding_key_cannot_push_out_another_keys_entries() -> None:
    gaps: dict[str, int] = {}
    failed: list[str] = []

    async def scenario(receiver: socket.socket, address: str) -> list[dict[str, str]]:
        journal = JournalSocket(
            lambda key, entry: failed.append(key),
            lambda key, count: gaps.update({key: count}),
            address,
            queue_limit=16 * 1024,
        )
        try:
            # Nobody reads: journald's queue fills, then the flood's own queue, then the
            # flood loses entries; the quiet key's entries wait in their own queue.
            for i in range(5_000):
                journal.send("flood", encode({"MESSAGE": f"flood {i}", "WATCHD_JOB": "flood"}))
                if i % 250 == 0:
                    journal.send("quiet", encode({"MESSAGE": f"quiet {i // 250}"}))
            received: list[dict[str, str]] = []

            def drained() -> bool:
                received.extend(receive_all(receiver))
                return "flood" in gaps and not journal._queues

            await async_wait_until(drained, "both queues to drain")
            received.extend(receive_all(receiver))
            return received
        finally:
            journal.close()

    with fake_journald() as (receiver, address):
        received = asyncio.run(scenario(receiver, address))
    quiet = [entry["MESSAGE"] for entry in received if entry["MESSAGE"].startswith("quiet")]
    flood = [entry["MESSAGE"] for entry in received if entry["MESSAGE"].startswith("flood")]
    assert quiet == [f"quiet {i}" for i in range(20)]
    assert flood == sorted(flood, key=lambda text: int(text.split()[1]))
    assert gaps == {"flood": 5_000 - len(flood)}
    assert failed == []


def test_without_journald_there_is_no_socket_to_use(tmp_path: Path) -> None:
    missing = str(tmp_path / "no-journald")
    assert not JournalSocket.available(missing)
    with pytest.raises(OSError):
        JournalSocket(lambda key, entry: None, lambda key, count: None, missing)


def test_entries_journald_refuses_are_handed_back() -> None:
    failed: list[tuple[str, dict[str, str]]] = []
    with fake_journald() as (receiver, address):
        journal = JournalSocket(
            lambda key, entry: failed.append((key, decode(entry))),
            lambda key, count: None,
            address,
        )
        receiver.close()  # journald went away and did not come back
        os.unlink(address)
        try:
            journal.send("web", encode({"MESSAGE": "hello"}))
        finally:
            journal.close()
    assert failed == [("web", {"MESSAGE": "hello"})]

"""The control protocol's parsing and limits, without a socket."""

from __future__ import annotations

import pytest

from watchd.control.protocol import (
    Command,
    ProtocolError,
    Request,
    decode_reply,
    encode,
    pages,
    parse_request,
)


def test_a_status_request_round_trips() -> None:
    request = Request(Command.STATUS, ("web", "worker"))
    assert parse_request(encode(request.to_json())) == request


def test_logs_request_keeps_lines_and_follow() -> None:
    request = Request(Command.LOGS, ("web",), 20, True)
    assert parse_request(encode(request.to_json())) == request


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"not json\n", "not JSON"),
        (b"\xff\xfe\n", "not JSON"),
        (b"[1, 2]\n", "expected a JSON object"),
        (b'{"command": "explode"}\n', "unknown command 'explode'"),
        (b'{"command": "status", "jobs": "web"}\n', '"jobs" must be a list'),
        (b'{"command": "restart"}\n', "restart needs at least one job name"),
        (b'{"command": "logs", "jobs": ["a"], "lines": -1}\n', '"lines" must be'),
        (b'{"command": "logs", "jobs": ["a"], "lines": true}\n', '"lines" must be'),
        (b'{"command": "logs", "jobs": ["a"], "follow": "yes"}\n', '"follow" must be'),
    ],
)
def test_malformed_requests_get_a_clear_error(line: bytes, message: str) -> None:
    with pytest.raises(ProtocolError, match=message.replace("(", r"\(")):
        parse_request(line)


def test_replies_are_one_line_of_json() -> None:
    encoded = encode({"ok": True, "detail": "two\nlines", "name": "café"})
    assert encoded.count(b"\n") == 1 and encoded.endswith(b"\n")
    assert decode_reply(encoded) == {"ok": True, "detail": "two\nlines", "name": "café"}


# 30,000 levels of nesting fit in 64 KiB; json's parser recurses once per level.
DEEP = b"[" * 30_000 + b"]" * 30_000


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (DEEP + b"\n", "nested too deeply"),
        (b'{"command": "status", "jobs": ' + DEEP + b"}\n", "nested too deeply"),
        (b'{"a":' * 10_000 + b"1" + b"}" * 10_000 + b"\n", "nested too deeply"),
        (b'{"command": ["status"]}\n', '"command" must be one of: .*; got a JSON list'),
        (b'{"command": {"status": 1}}\n', '"command" must be one of: .*; got a JSON dict'),
        (b'{"jobs": ["web"]}\n', '"command" must be one of: .*; got nothing'),
        (b'{"command": "logs", "jobs": ["a"], "lines": ' + b"7" * 5000 + b"}\n", "digits"),
        (b'{"command": "logs", "jobs": ["a"], "lines": 1e999}\n', '"lines" must be'),
        (b'{"command": "status", "jobs": [' + b"1" * 5000 + b"]}\n", "digits"),
    ],
)
def test_hostile_request_shapes_get_an_error_not_an_exception(line: bytes, message: str) -> None:
    assert len(line) <= 64 * 1024
    with pytest.raises(ProtocolError, match=message):
        parse_request(line)


def test_a_lone_surrogate_in_a_request_can_be_answered() -> None:
    request = parse_request(b'{"command": "status", "jobs": ["\\ud800web"]}\n')
    reply = encode({"ok": False, "error": f"unknown job: {request.jobs[0]}"})
    assert decode_reply(reply)["error"] == "unknown job: \ud800web"
    assert reply.endswith(b"\n") and reply.count(b"\n") == 1


def test_log_pages_keep_every_line_in_order_within_the_page_size() -> None:
    lines = [f"{i:05d}" + "x" * 60_000 for i in range(100)] + ["\x00" * 65_536, "é"]
    chunks = pages(lines, 1024 * 1024)
    assert [line for chunk in chunks for line in chunk] == lines
    assert len(chunks) > 1
    for chunk in chunks:
        encoded = encode({"ok": True, "lines": chunk, "more": True})
        assert len(encoded) <= 1024 * 1024 + 6 * 65_536


def test_no_lines_is_one_empty_page() -> None:
    assert pages([]) == [[]]

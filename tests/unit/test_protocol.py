"""The control protocol's parsing and limits, without a socket."""

from __future__ import annotations

import pytest

from watchd.control.protocol import ProtocolError, Request, decode_reply, encode, parse_request


def test_a_status_request_round_trips() -> None:
    request = Request("status", ("web", "worker"))
    assert parse_request(encode(request.to_json())) == request


def test_logs_request_keeps_lines_and_follow() -> None:
    request = Request("logs", ("web",), 20, True)
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

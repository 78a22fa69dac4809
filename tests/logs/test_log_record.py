"""The line formats: what instances write round-trips; router and malformed lines are kept."""

from __future__ import annotations

import json

import pytest

from sprout.logs.record import LogRecord, ParsedLine, format_line, parse_line


def test_format_line_is_one_json_object_with_the_agreed_keys() -> None:
    line = format_line(LogRecord(1764150000.25, "stderr", "i-1", "shop", "prod", "v3", "a", 'said "hi" ✓\n'))
    assert line.endswith("\n")
    assert line.count("\n") == 1, "a newline in the message is escaped, never splits the line"
    assert json.loads(line) == {
        "ts": 1764150000.25,
        "stream": "stderr",
        "instance": "i-1",
        "app": "shop",
        "env": "prod",
        "version": "v3",
        "zone": "a",
        "msg": 'said "hi" ✓\n',
    }


def test_instance_line_round_trips() -> None:
    rec = LogRecord(12.5, "system", "i-9", "shop", "prod", "v2", "b", "started")
    assert parse_line(format_line(rec).rstrip("\n"), "instance", 99.0) == ParsedLine(
        12.5, "instance", "system", "i-9", "shop", "prod", "v2", "b", "started"
    )


@pytest.mark.parametrize("when", [1764150000.5, "2025-11-26T09:40:00.500000+00:00", "2025-11-26T09:40:00.5Z"])
def test_router_access_line_becomes_a_readable_row(when: float | str) -> None:
    text = json.dumps(
        {
            "time": when,
            "request_id": "r-42",
            "host": "shop.localhost",
            "method": "POST",
            "path": "/cart",
            "status": 502,
            "bytes": 0,
            "duration": 0.012,
            "target": "127.0.0.1:40001",
            "version": "v3",
            "zone": "b",
            "retries": 1,
        }
    )
    row = parse_line(text, "router", 0.0)
    assert row == ParsedLine(
        ts=1764150000.5,
        source="router",
        stream="access",
        instance="",
        app="",
        env="",
        version="v3",
        zone="b",
        msg="POST shop.localhost/cart 502 bytes=0 duration=0.012 target=127.0.0.1:40001 request_id=r-42 retries=1",
    )


@pytest.mark.parametrize(
    ("text", "source"),
    [
        ("plain text from a misbehaving writer", "instance"),
        (
            '{"ts": "not a time", "stream": "stdout", "instance": "i", "app": "a", "env": "e", '
            '"version": "v1", "zone": "a", "msg": "m"}',
            "instance",
        ),
        ('{"msg": "missing fields"}', "instance"),
        ("[1, 2, 3]", "router"),
        ('{"path": "/no-method"}', "router"),
    ],
)
def test_malformed_lines_are_kept_verbatim(text: str, source: str) -> None:
    assert parse_line(text, source, 7.0) == ParsedLine(7.0, source, "raw", "", "", "", "", "", text)

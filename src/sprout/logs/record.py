"""The log line formats: what an instance writes (one JSON object per line) and what the router writes.

Instances (the agent) write `format_line(LogRecord(...))`:
`{"ts": 1764150000.25, "stream": "stdout", "instance": "i-…", "app": "…", "env": "…", "version": "v3",
"zone": "a", "msg": "…"}`. The router's access log is JSON lines with the keys of `ROUTER_KEYS`.
Parsing is tolerant: a line that is not in the expected shape is kept verbatim (stream `raw`) rather
than dropped, so nothing written to a log file is ever lost to a format slip.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Literal

Stream = Literal["stdout", "stderr", "system"]
SOURCE_INSTANCE = "instance"
SOURCE_ROUTER = "router"
SOURCES = (SOURCE_INSTANCE, SOURCE_ROUTER)
ROUTER_KEYS = (
    "time",
    "request_id",
    "host",
    "method",
    "path",
    "status",
    "bytes",
    "duration",
    "target",
    "version",
    "zone",
    "retries",
    "route",
)
_FIELDS = ("ts", "stream", "instance", "app", "env", "version", "zone", "msg")


@dataclass(frozen=True)
class LogRecord:
    """One line of an instance's log: when, which stream, which instance of what, and the message."""

    ts: float
    stream: Stream
    instance: str
    app: str
    env: str
    version: str
    zone: str
    msg: str


def format_line(record: LogRecord) -> str:
    """The record as one JSON line, newline included, ready to append to an instance log file."""
    return json.dumps(asdict(record), ensure_ascii=False, separators=(",", ":")) + "\n"


@dataclass(frozen=True)
class ParsedLine:
    """A log line normalised for the log store, whatever file it came from."""

    ts: float
    source: str
    stream: str
    instance: str
    app: str
    env: str
    version: str
    zone: str
    msg: str


def parse_line(text: str, source: str, fallback_ts: float) -> ParsedLine:
    """Normalise one line (without its newline) from an instance or router log; never raises."""
    try:
        obj = json.loads(text)
    except ValueError:
        obj = None
    if isinstance(obj, dict):
        parsed = _router_line(obj, fallback_ts) if source == SOURCE_ROUTER else _instance_line(obj)
        if parsed is not None:
            return parsed
    return ParsedLine(fallback_ts, source, "raw", "", "", "", "", "", text)


def _instance_line(obj: dict[str, Any]) -> ParsedLine | None:
    """An instance line from its JSON object, or None if it lacks the record's fields."""
    if not all(key in obj for key in _FIELDS):
        return None
    ts = _epoch(obj["ts"])
    if ts is None:
        return None
    text = {key: str(obj[key]) for key in _FIELDS if key != "ts"}
    return ParsedLine(ts=ts, source=SOURCE_INSTANCE, **text)


def _router_line(obj: dict[str, Any], fallback_ts: float) -> ParsedLine | None:
    """A router access-log line from its JSON object, its message a readable one-line summary."""
    if "method" not in obj or "status" not in obj:
        return None
    ts = _epoch(obj.get("time"))
    g = {key: obj.get(key, "") for key in ROUTER_KEYS}
    msg = (
        f"{g['method']} {g['host']}{g['path']} {g['status']} bytes={g['bytes']} duration={g['duration']} "
        f"target={g['target']} request_id={g['request_id']} retries={g['retries']}"
    ) + (f" route={g['route']}" if g["route"] else "")
    return ParsedLine(
        ts=fallback_ts if ts is None else ts,
        source=SOURCE_ROUTER,
        stream="access",
        instance="",
        app="",
        env="",
        version=str(g["version"] or ""),
        zone=str(g["zone"] or ""),
        msg=msg,
    )


def _epoch(value: object) -> float | None:
    """Seconds since the epoch from a number or an ISO 8601 string; None if neither."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return None

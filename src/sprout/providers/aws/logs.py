"""CloudWatch Logs: ship an instance's log file in batched PutLogEvents, and read a group back.

The shipper tails the agent's JSON-lines log file from where it last stopped, only ever sending whole
lines, and respects the PutLogEvents limits (10,000 events, 1 MiB with 26 bytes of overhead per event,
256 KiB per event, oldest first). Each event's message is the line itself, so a reader gets back the
same records the one-machine log store keeps.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sprout.errors import ServiceError
from sprout.providers.aws.clients import error_code

MAX_EVENTS = 10_000
MAX_BATCH_BYTES = 1_048_576
EVENT_OVERHEAD = 26
MAX_EVENT_BYTES = 262_144 - EVENT_OVERHEAD
READ_CHUNK = 1 << 20


@dataclass(frozen=True)
class LogEvent:
    """One CloudWatch Logs event: milliseconds since the epoch and the message."""

    timestamp: int
    message: str


def event_for(line: str, now: float) -> LogEvent:
    """The event for one log line: its own `ts` when it is a Sprout record, else `now`."""
    ts = now
    try:
        obj = json.loads(line)
        if isinstance(obj, dict) and isinstance(obj.get("ts"), int | float):
            ts = float(obj["ts"])
    except ValueError:
        pass
    message = line.encode("utf-8")[:MAX_EVENT_BYTES].decode("utf-8", "ignore")
    return LogEvent(int(ts * 1000), message)


def batches(events: list[LogEvent]) -> Iterator[list[LogEvent]]:
    """Split events (oldest first) into PutLogEvents-sized batches."""
    batch: list[LogEvent] = []
    size = 0
    for event in sorted(events, key=lambda e: e.timestamp):
        cost = len(event.message.encode("utf-8")) + EVENT_OVERHEAD
        if batch and (len(batch) >= MAX_EVENTS or size + cost > MAX_BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(event)
        size += cost
    if batch:
        yield batch


class LogShipper:
    """Tails one log file and ships its new lines to a log stream, every `interval` seconds."""

    def __init__(self, client: Any, group: str, stream: str, path: Path, interval: float = 1.0) -> None:
        self.client = client
        self.group = group
        self.stream = stream
        self.path = path
        self.interval = interval
        self.offset = 0
        self.shipped = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def ensure_stream(self) -> None:
        """Create the log stream unless it exists."""
        try:
            self.client.create_log_stream(logGroupName=self.group, logStreamName=self.stream)
        except Exception as exc:
            if error_code(exc) != "ResourceAlreadyExistsException":
                raise ServiceError(
                    f"CloudWatch Logs {self.group}/{self.stream}: cannot create the stream ({exc}); "
                    "check the instance role allows logs:CreateLogStream on the group"
                ) from exc

    def _new_lines(self) -> list[str]:
        """Whole lines appended since the last call; a partial last line waits for its newline."""
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read(READ_CHUNK)
        except FileNotFoundError:
            return []
        end = data.rfind(b"\n")
        if end < 0:
            return []
        self.offset += end + 1
        return [line for line in data[:end].decode("utf-8", "replace").split("\n") if line]

    def ship_once(self) -> int:
        """Send every complete line written since the last call; return how many were sent."""
        sent = 0
        while True:
            lines = self._new_lines()
            if not lines:
                return sent
            now = time.time()
            for batch in batches([event_for(line, now) for line in lines]):
                self.client.put_log_events(
                    logGroupName=self.group,
                    logStreamName=self.stream,
                    logEvents=[{"timestamp": e.timestamp, "message": e.message} for e in batch],
                )
                sent += len(batch)
                self.shipped += len(batch)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.ship_once()
            except Exception:
                # CloudWatch being briefly unreachable must not stop the instance; the offset only
                # advances past lines that were read, so the next round retries from the same place.
                continue

    def start(self) -> None:
        """Create the stream and start shipping in a daemon thread."""
        self.ensure_stream()
        self._thread = threading.Thread(target=self._loop, name=f"ship-{self.stream}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread, then ship what is left."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.ship_once()


def read_events(
    client: Any, group: str, start: float | None = None, pattern: str | None = None, limit: int = 1000
) -> list[LogEvent]:
    """Events of the log group (all streams) since `start` (epoch seconds), oldest first, via FilterLogEvents."""
    args: dict[str, Any] = {"logGroupName": group}
    if start is not None:
        args["startTime"] = int(start * 1000)
    if pattern:
        args["filterPattern"] = pattern
    events: list[LogEvent] = []
    try:
        for page in client.get_paginator("filter_log_events").paginate(**args):
            events.extend(LogEvent(int(e["timestamp"]), str(e["message"])) for e in page.get("events", []))
    except Exception as exc:
        raise ServiceError(f"CloudWatch Logs {group}: cannot read events ({exc}); is the stack up?") from exc
    events.sort(key=lambda e: e.timestamp)
    return events[-limit:]


def describe(event: LogEvent) -> str:
    """One readable line for an event: time, instance, stream and message of a Sprout record."""
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(event.timestamp / 1000))
    try:
        obj = json.loads(event.message)
    except ValueError:
        return f"{when} {event.message}"
    if not isinstance(obj, dict):
        return f"{when} {event.message}"
    return f"{when} {obj.get('instance', '-')} {obj.get('stream', '-')}: {obj.get('msg', '')}"


def boot_tail(client: Any, group: str, lines: int = 10) -> list[str]:
    """The last lines of the newest instance boot log (`<instance>/boot`) in `group`, for a failed `up`."""
    try:
        streams = client.describe_log_streams(logGroupName=group)["logStreams"]
    except Exception:
        return []
    boots = sorted(
        (s for s in streams if s["logStreamName"].endswith("/boot")),
        key=lambda s: s.get("lastEventTimestamp") or s.get("creationTime") or 0,
    )
    if not boots:
        return []
    name = boots[-1]["logStreamName"]
    events = client.get_log_events(logGroupName=group, logStreamName=name, limit=lines, startFromHead=False)
    return [f"{name}: {e['message']}" for e in events["events"]]

"""Access log as JSON lines, buffered in memory and written in batches off the request path."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

log = logging.getLogger("sprout.router")

# One row per request: the proxy appends a tuple, the flush formats it (json.dumps stays off the hot path).
Row = tuple[float, bytes, bytes, bytes, bytes, int, int, float, str, str, str, int]


class AccessLog:
    """Append-only JSON-lines file; `record` is a list append, `flush` does the formatting and the write."""

    def __init__(self, path: Path, max_rows: int = 100_000) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self.rows: list[Row] = []
        self.max_rows = max_rows
        #: Rows lost: beyond `max_rows` between flushes, or not written because the write failed.
        self.dropped = 0
        #: A failed write may have left half a line: the next write starts on a new line.
        self._torn = False
        self._failing = False

    def record(self, row: Row) -> None:
        """Queue one request's row; rows beyond `max_rows` between flushes are counted and dropped."""
        if len(self.rows) < self.max_rows:
            self.rows.append(row)
        else:
            self.dropped += 1

    def flush(self) -> None:
        """Format and write the queued rows with one write call; rows that cannot be written are counted.

        A write error (a full disk) never propagates: the rows are dropped and counted, and the next
        flush writes again, so the log resumes by itself once space returns.
        """
        rows, self.rows = self.rows, []
        if not rows:
            return
        lines = []
        for t, rid, host, method, path, status, nbytes, duration, target, version, zone, retries in rows:
            lines.append(
                json.dumps(
                    {
                        "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t))
                        + f".{int(t % 1 * 1000):03d}Z",
                        "request_id": rid.decode("latin-1"),
                        "host": host.decode("latin-1"),
                        "method": method.decode("latin-1"),
                        "path": path.decode("latin-1"),
                        "status": status,
                        "bytes": nbytes,
                        "duration": round(duration, 6),
                        "target": target,
                        "version": version,
                        "zone": zone,
                        "retries": retries,
                    },
                    separators=(",", ":"),
                )
            )
        lead = b"\n" if self._torn else b""
        data = lead + ("\n".join(lines) + "\n").encode()
        done = 0
        try:
            while done < len(data):
                done += os.write(self._fd, memoryview(data)[done:])
                self._torn = True
        except OSError as exc:
            # The rows whose whole line made it to the file are kept; the rest are dropped.
            self.dropped += len(rows) - data.count(b"\n", len(lead), done)
            if not self._failing:
                self._failing = True
                log.error("access log %s: %s; dropping rows until writes succeed again", self.path, exc)
            return
        self._torn = False
        if self._failing:
            self._failing = False
            log.info("access log %s: writing again (%d rows dropped so far)", self.path, self.dropped)

    def close(self) -> None:
        """Flush what is queued and close the file."""
        self.flush()
        os.close(self._fd)

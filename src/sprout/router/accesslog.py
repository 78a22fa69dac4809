"""Access log, buffered in memory and written in batches off the request path.

Notable requests (an error status or slow) go to the notable log as JSON lines, which the control plane
indexes in the log store; every other request (sampled when asked) goes to the compact access files
(`sprout.accessfiles`), which the router rotates and the control plane compresses and searches.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
from pathlib import Path
from typing import Final

import sprout.accessfiles as access

log: Final = logging.getLogger("sprout.router")

# One row per request: the proxy appends a tuple, the flush formats it (formatting stays off the hot path).
# (time, request id, host, method, path, status, bytes, duration, where, retries, route): `where` is the
# target's pre-joined `target\tversion\tzone` (`sprout.accessfiles.where`), `route` the route's name.
Row = tuple[float, bytes, bytes, bytes, bytes, int, int, float, bytes, int, bytes]
#: From this status up a request is an error: always kept, never sampled.
ERROR_STATUS: Final = 400
#: Rows queued before `record` flushes them itself: a flush holds the event loop for ~1 us per row, so a
#: batch this size stalls requests ~1 ms, where a whole second's batch at 25 k req/s stalled them ~70 ms.
BATCH_ROWS: Final = 1024


class _Sink:
    """One append-only file: whole lines written with one call; rows that could not be written counted."""

    def __init__(self, path: Path, name: str) -> None:
        self.path = path
        self.name = name
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self.size = os.fstat(self.fd).st_size
        #: A failed write may have left half a line: the next write starts on a new line.
        self.torn = False
        self.failing = False

    def write(self, data: bytes, lines: int) -> int:
        """Append `data` (`lines` whole lines); return how many of them were lost to a failed write.

        A write error (a full disk) never propagates: the next write tries again, so the log resumes by
        itself once space returns.
        """
        lead = b"\n" if self.torn else b""
        data = lead + data
        done = 0
        try:
            while done < len(data):
                done += os.write(self.fd, memoryview(data)[done:])
                self.torn = True
        except OSError as exc:
            self.size += done
            if not self.failing:
                self.failing = True
                log.error("%s %s: %s; dropping rows until writes succeed again", self.name, self.path, exc)
            # The rows whose whole line made it to the file are kept; the rest are dropped.
            return lines - data.count(b"\n", len(lead), done)
        self.size += done
        self.torn = False
        if self.failing:
            self.failing = False
            log.info("%s %s: writing again", self.name, self.path)
        return 0

    def close(self) -> None:
        os.close(self.fd)


class AccessLog:
    """`record` is a list append (and every `BATCH_ROWS` a flush); `flush` splits notable from sampled
    successful rows, formats, writes."""

    def __init__(
        self,
        path: Path,
        *,
        sample: float = 1.0,
        slow: float = access.SLOW_SECONDS,
        rotate_bytes: int = access.ROTATE_BYTES,
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.folder = access.folder_of(path)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.sample = sample
        self.slow = slow
        self.rotate_bytes = rotate_bytes
        self._notable = _Sink(path, "access log")
        self._ok = _Sink(self.folder / access.CURRENT, "access file")
        self.rows: list[Row] = []
        #: Rows lost: not written because the write failed.
        self.dropped = 0

    def record(self, row: Row) -> None:
        """Queue one request's row, flushing every `BATCH_ROWS` rows."""
        rows = self.rows
        rows.append(row)
        if len(rows) >= BATCH_ROWS:
            self.flush()

    def flush(self) -> None:
        """Format and write the queued rows, one write per file; rows that cannot be written are counted."""
        rows, self.rows = self.rows, []
        if not rows:
            return
        notable = []
        ok = []
        slow, sample, line = self.slow, self.sample, access.LINE
        for row in rows:
            if row[5] >= ERROR_STATUS or row[7] >= slow:
                notable.append(notable_line(row))
            elif sample >= 1.0 or random.random() < sample:
                ok.append(row)
        # Row: (t, rid, host, method, path, status, bytes, duration, where, retries, route).
        data = b"".join(
            [line % (r[0], r[10], r[3], r[2], r[4], r[5], r[6], r[7], r[8], r[9], r[1]) for r in ok]
        )
        if data.count(b"\t") != access.TABS * len(ok):
            # A value from the request (host, path, request id) held a tab, which would shift the line's
            # fields: the rare batch with one is formatted again with those tabs turned to spaces.
            data = b"".join([line % (r[0], r[10], r[3], _untab(r[2]), _untab(r[4]), r[5], r[6], r[7], r[8], r[9],
                                     _untab(r[1])) for r in ok])  # fmt: skip
        self.write(data, len(ok), notable)

    def write(self, ok: bytes, ok_lines: int, notable: list[str]) -> None:
        """Append `ok_lines` formatted access lines to the access files (rotating them at `rotate_bytes`)
        and the `notable` JSON lines to the notable log; lines that cannot be written are counted."""
        if notable:
            self.dropped += self._notable.write(("\n".join(notable) + "\n").encode(), len(notable))
        if ok:
            self.dropped += self._ok.write(ok, ok_lines)
            if self._ok.size >= self.rotate_bytes:
                self._rotate()

    def _rotate(self) -> None:
        """Rename the current access file aside (the control plane compresses it) and start a new one."""
        current = self.folder / access.CURRENT
        rotated = self.folder / f"access-{time.time_ns()}.log"
        try:
            os.rename(current, rotated)
            try:
                fresh = _Sink(current, "access file")
            except OSError:
                os.rename(rotated, current)
                raise
        except OSError as exc:
            log.error("access file %s: cannot rotate (%s); appending on", current, exc)
            return
        self._ok.close()
        self._ok = fresh

    def close(self) -> None:
        """Flush what is queued and close the files."""
        self.flush()
        self._notable.close()
        self._ok.close()


def _untab(value: bytes) -> bytes:
    return value.replace(b"\t", b" ")


def notable_line(row: Row) -> str:
    """A notable row as the JSON line the log store ingests."""
    t, rid, host, method, path, status, nbytes, duration, where, retries, route = row
    target, version, zone = where.decode("utf-8", "replace").split("\t")
    return json.dumps(
        {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z",
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
            "route": route.decode("utf-8", "replace"),
        },
        separators=(",", ":"),
    )

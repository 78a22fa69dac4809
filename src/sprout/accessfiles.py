"""The router's access files: successful requests as compact tab-separated lines, rotated and compressed.

The router writes each successful request (sampled when asked) as one line to `access/current.log`
beside its notable log (errors and slow requests, JSON lines, ingested into the log store): no SQLite
row, no index, no per-line work in the daemon. At `ROTATE_BYTES` the router renames the file to
`access-<ns>.log`; the daemon's ingester gzips rotated files and deletes the oldest past a total size or
an age (`AccessFiles.maintain`). `sprout logs` searches these files at query time (`AccessFiles.search`).

Line: `time route method host+path status bytes duration target version zone retries request_id`,
tab-separated, time in epoch seconds (ms), duration in seconds. The HAProxy engine writes the same line
(its shipper, `sprout.router.haproxy.shipper`, copies it here) with two differences a reader absorbs:
the duration as milliseconds with an exponent (`12e-3`), and `-` for an empty route, version or zone.
"""

from __future__ import annotations

import gzip
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sprout.errors import UserError

MIB = 1024 * 1024
FOLDER = "access"
CURRENT = "current.log"
ROTATE_BYTES = 64 * 1024 * 1024
KEEP_BYTES = 1024 * 1024 * 1024
KEEP_DAYS = 14
#: A request this slow (seconds) or with a status from 400 up is notable: never sampled, always indexed.
SLOW_SECONDS = 1.0
#: Seconds a search may spend opening older files (each file it opens is searched whole).
SEARCH_BUDGET = 1.0
#: The most a caller may give a search (`sprout logs --search-seconds`): the daemon answers it in a thread.
SEARCH_BUDGET_MAX = 60.0
#: Level 1 keeps ~20 bytes of a ~130-byte line for 0.6 us of CPU; level 6 keeps ~15 for 1.6 us.
GZIP_LEVEL = 1
_ROTATED = re.compile(r"^access-(\d+)\.log(\.gz)?$")
_FIELDS = 12


@dataclass(frozen=True)
class Settings:
    """The daemon's access-file settings, from its environment (`SPROUT_ACCESS_*`)."""

    sample: float = 1.0
    keep_bytes: int = KEEP_BYTES
    keep_days: float = KEEP_DAYS
    rotate_bytes: int = ROTATE_BYTES

    @classmethod
    def from_env(cls) -> Settings:
        """Settings from SPROUT_ACCESS_SAMPLE, SPROUT_ACCESS_KEEP_MB, SPROUT_ACCESS_KEEP_DAYS and
        SPROUT_ACCESS_ROTATE_MB."""
        values = []
        for name, kind, default in (
            ("SPROUT_ACCESS_SAMPLE", float, cls.sample),
            ("SPROUT_ACCESS_KEEP_MB", float, KEEP_BYTES / MIB),
            ("SPROUT_ACCESS_KEEP_DAYS", float, cls.keep_days),
            ("SPROUT_ACCESS_ROTATE_MB", float, ROTATE_BYTES / MIB),
        ):
            raw = os.environ.get(name, "").strip()
            try:
                values.append(kind(raw) if raw else default)
            except ValueError:
                raise UserError(f"{name}={raw!r}: not a number") from None
        sample, keep_mb, keep_days, rotate_mb = values
        if not 0.0 <= sample <= 1.0:
            raise UserError(f"SPROUT_ACCESS_SAMPLE={sample}: give a share from 0 to 1 (1 keeps every line)")
        if rotate_mb <= 0:
            raise UserError(f"SPROUT_ACCESS_ROTATE_MB={rotate_mb}: give a size in MiB above 0")
        return cls(sample, int(keep_mb * MIB), keep_days, max(1, int(rotate_mb * MIB)))


def folder_of(notable_log: Path) -> Path:
    """The folder of the access files that go with the router's notable log `notable_log`."""
    return notable_log.parent / FOLDER


#: One access line as bytes, newline included, filled in by the router's flush (`sprout.router.accesslog`):
#: time, route, method, host, path (host and path make one field), status, bytes, duration, then
#: `target\tversion\tzone` as one pre-joined value (the target's `log_where`), retries, request id.
#: Bytes formatting with the values as the proxy holds them: ~1.5 us per line, half of formatting text.
TABS = 11
LINE = b"%.3f\t%s\t%s\t%s%s\t%d\t%d\t%.4f\t%s\t%d\t%s\n"


def where(target: str, version: str, zone: str) -> bytes:
    """The `target\tversion\tzone` part of an access line (tabs in the values become spaces)."""
    return "\t".join(v.replace("\t", " ") for v in (target, version, zone)).encode("utf-8", "replace")


@dataclass(frozen=True)
class AccessLine:
    """One successful request from the access files."""

    ts: float
    route: str
    method: str
    host_path: str
    status: int
    bytes: int
    duration: float
    target: str
    version: str
    zone: str
    retries: int
    request_id: str

    def message(self) -> str:
        """The line as the log store words a router line."""
        return (
            f"{self.method} {self.host_path} {self.status} bytes={self.bytes} duration={self.duration} "
            f"target={self.target} request_id={self.request_id} retries={self.retries} route={self.route}"
        )


def parse_line(text: str) -> AccessLine | None:
    """An access line (without its newline), or None if it is not one."""
    f = text.split("\t")
    if len(f) != _FIELDS:
        return None
    try:
        return AccessLine(
            float(f[0]),
            _blank(f[1]),
            f[2],
            f[3],
            int(f[4]),
            int(f[5]),
            float(f[6]),
            f[7],
            _blank(f[8]),
            _blank(f[9]),
            int(f[10]),
            f[11],
        )
    except ValueError:
        return None


def _blank(field: str) -> str:
    """A field HAProxy left empty (it writes `-`) as the router writes it: empty."""
    return "" if field == "-" else field


@dataclass(frozen=True)
class Search:
    """An access-file search's lines (oldest first) and the older files it left unread when time ran out."""

    lines: list[AccessLine]
    unread_files: int = 0
    unread_bytes: int = 0
    #: The last write of the newest unread file: lines up to this time may hold matches not read.
    unread_until: float = 0.0


@dataclass(frozen=True)
class Maintenance:
    """What one `maintain` pass did."""

    compressed: int
    deleted: int


class AccessFiles:
    """The access files in one folder: the current one, rotated ones and their gzipped forms."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def files(self) -> list[Path]:
        """Every access file, oldest first (the current one last)."""
        rotated = []
        if self.folder.is_dir():
            for entry in os.scandir(self.folder):
                m = _ROTATED.match(entry.name)
                if m:
                    rotated.append((int(m.group(1)), m.group(2) is not None, Path(entry.path)))
        # A rotated file and its gzip can briefly coexist mid-compression: the plain one is read.
        seen: set[int] = set()
        ordered = []
        for ns, _gz, path in sorted(rotated, key=lambda r: (r[0], r[1])):
            if ns not in seen:
                seen.add(ns)
                ordered.append(path)
        current = self.folder / CURRENT
        return [*ordered, current] if current.exists() else ordered

    def disk_bytes(self) -> int:
        """Bytes the access files take on disk."""
        return sum(_size(p) for p in self.files())

    def maintain(
        self, keep_bytes: int = KEEP_BYTES, keep_days: float = KEEP_DAYS, now: float | None = None
    ) -> Maintenance:
        """Gzip rotated files, then delete the oldest while the total is over `keep_bytes` or too old."""
        compressed = 0
        for path in self.files():
            if path.name.endswith(".log") and path.name != CURRENT:
                _gzip(path)
                compressed += 1
        cutoff = (time.time() if now is None else now) - keep_days * 86400
        files = self.files()
        total = sum(_size(p) for p in files)
        deleted = 0
        for path in files:
            if path.name == CURRENT:
                break
            if total <= keep_bytes and _mtime(path) >= cutoff:
                break
            total -= _size(path)
            path.unlink(missing_ok=True)
            deleted += 1
        return Maintenance(compressed, deleted)

    def search(
        self,
        *,
        grep: str | None,
        since: float | None,
        version: str | None,
        limit: int,
        budget: float = SEARCH_BUDGET,
    ) -> Search:
        """The newest `limit` lines matching every filter (case-insensitive substring for `grep`).

        Files are searched newest first; the newest is always read, and no older one is opened once `budget`
        seconds have gone, so a query answers in bounded time however much is retained (`since` reaches
        further back faster). What was left unread is counted in the result.
        """
        found: list[AccessLine] = []
        needle = grep.lower().encode() if grep else None
        deadline = time.monotonic() + budget
        files = self.files()
        for i in range(len(files) - 1, -1, -1):
            path = files[i]
            if since is not None and _mtime(path) < since:
                break
            if i < len(files) - 1 and time.monotonic() > deadline:
                unread = [p for p in files[: i + 1] if since is None or _mtime(p) >= since]
                return Search(found[::-1], len(unread), sum(_size(p) for p in unread), _mtime(path))
            for line in _newest_first(_read(path), needle):
                if (since is None or line.ts >= since) and (version is None or line.version == version):
                    found.append(line)
                    if len(found) >= limit:
                        return Search(found[::-1])
        return Search(found[::-1])


def _newest_first(data: bytes, needle: bytes | None) -> Iterator[AccessLine]:
    """The parsed lines of `data` (those containing `needle` when given), last line first."""
    if needle is None:
        chunks: Iterator[bytes] = reversed(data.split(b"\n"))
    else:
        chunks = _matching_lines(data, needle)
    for raw in chunks:
        line = parse_line(raw.decode("utf-8", "replace")) if raw else None
        if line is not None:
            yield line


def _matching_lines(data: bytes, needle: bytes) -> Iterator[bytes]:
    """The lines of `data` that contain `needle` (case-insensitive), last first, found at memchr speed."""
    lowered = data.lower()
    end = len(lowered)
    while True:
        at = lowered.rfind(needle, 0, end)
        if at < 0:
            return
        start = lowered.rfind(b"\n", 0, at) + 1
        stop = lowered.find(b"\n", at)
        yield data[start : stop if stop >= 0 else len(data)]
        end = start


def _read(path: Path) -> bytes:
    try:
        if path.name.endswith(".gz"):
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except FileNotFoundError:
        # Deleted by retention or replaced by its gzip between the listing and the read.
        gz = path.with_name(path.name + ".gz")
        return _read(gz) if gz.exists() else b""


def _gzip(path: Path) -> None:
    """Replace `path` by `path.gz` (written aside, then renamed: a crash leaves one whole form)."""
    final = path.with_name(path.name + ".gz")
    part = path.with_name(path.name + ".gz.part")
    with open(path, "rb") as src, gzip.open(part, "wb", compresslevel=GZIP_LEVEL) as dst:
        while block := src.read(1 << 20):
            dst.write(block)
    os.replace(part, final)
    path.unlink()


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return 0.0

"""Edge cache (the CDN role): a size-bounded LRU of public GET responses, per route."""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass

from sprout.router import wire

_MAX_AGE = re.compile(rb"(?:^|[,\s])max-age\s*=\s*(\d+)")


@dataclass(frozen=True, slots=True)
class Entry:
    """One cached response: status, the headers to replay (framing removed), the body, its expiry."""

    status: int
    headers: bytes
    body: bytes
    expires: float

    def response(self, request_id: bytes, keep_alive: bool) -> bytes:
        """The full response for a cache hit."""
        parts = [
            wire.status_line(self.status),
            self.headers,
            b"Content-Length: %d\r\nX-Cache: HIT\r\nX-Request-Id: %s\r\n" % (len(self.body), request_id),
        ]
        if not keep_alive:
            parts.append(b"Connection: close\r\n")
        parts += [b"\r\n", self.body]
        return b"".join(parts)

    @property
    def size(self) -> int:
        """Bytes the entry accounts for in the cache budget."""
        return len(self.headers) + len(self.body) + 128


def cache_lifetime(status: int, headers: list[tuple[bytes, bytes]]) -> int:
    """Seconds a response may be cached, or 0 when it must not be (private, no-store, cookies, Vary)."""
    if status != 200:
        return 0
    public = False
    max_age = 0
    for name, value in headers:
        cls = wire.header_class(name)
        if cls == wire.SET_COOKIE:
            return 0
        if cls == wire.VARY:
            for token in value.split(b","):
                if token.strip().lower() not in (b"accept-encoding", b""):
                    return 0
        elif cls == wire.CACHE_CONTROL:
            lowered = value.lower()
            if b"private" in lowered or b"no-store" in lowered or b"no-cache" in lowered:
                return 0
            if b"public" in lowered:
                public = True
            m = _MAX_AGE.search(lowered)
            if m:
                max_age = int(m.group(1))
    return max_age if public else 0


class EdgeCache:
    """Least-recently-used responses up to `max_bytes` in total, each at most `max_object` bytes."""

    def __init__(self, max_bytes: int, max_object: int) -> None:
        self.max_bytes = max_bytes
        self.max_object = max_object
        self.size = 0
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[tuple[bytes, ...], Entry] = OrderedDict()

    def get(self, key: tuple[bytes, ...], now: float) -> Entry | None:
        """A fresh entry for `key`, or None (expired entries are dropped)."""
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        if entry.expires <= now:
            del self._entries[key]
            self.size -= entry.size
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return entry

    def put(self, key: tuple[bytes, ...], entry: Entry) -> None:
        """Store an entry, evicting the least recently used ones to stay in budget."""
        if entry.size > self.max_object:
            return
        old = self._entries.pop(key, None)
        if old is not None:
            self.size -= old.size
        self._entries[key] = entry
        self.size += entry.size
        while self.size > self.max_bytes and self._entries:
            _, evicted = self._entries.popitem(last=False)
            self.size -= evicted.size

    def flush(self) -> None:
        """Forget everything (the route's versions changed)."""
        self._entries.clear()
        self.size = 0

    def __len__(self) -> int:
        return len(self._entries)

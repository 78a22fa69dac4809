"""Server-side sessions for Python web apps: a store chosen by SESSION_STORE_URL and an ASGI middleware.

One line gives an app sessions that survive instances and zones::

    app = SessionMiddleware(app, store_from_url())   # request.session is a dict, saved when it changes

The browser holds only a signed, random session id; the data lives in the store named by
``SESSION_STORE_URL``:

- ``sqlite:///path`` (the embedded default, one machine),
- ``memcached://h1:p1,h2:p2``, with ``SESSION_STORE_ZONES=a=h1:p1,b=h2:p2`` naming each node's zone (or
  zone-annotated ``memcached://a=h1:p1,b=h2:p2``): every session is written to two nodes in different
  zones and read back from both, the node of ``SPROUT_ZONE`` first, so losing a node loses no session; a
  version in every value lets the newest copy win and repairs the lagging node (the mcrouter replicated
  pool / EVCache pattern),
- ``redis://host:port/db``.

This module is vendored byte for byte into each example app (``examples/<app>/<pkg>/_sessions.py``) so a
deployed app needs no ``sprout`` package: it imports only the standard library, plus pymemcache or redis
when its URL asks for them.  Keep it one self-contained file.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any, Protocol

log = logging.getLogger("sprout.sessions")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

DEFAULT_TTL = 14 * 24 * 3600
DEFAULT_URL = "sqlite:///sessions.sqlite3"
# memcached reads an expiry above 30 days as a unix timestamp, so longer TTLs are clamped.
MEMCACHED_MAX_TTL = 30 * 24 * 3600


class SessionStoreError(Exception):
    """The session store is unreachable or misconfigured."""


class SessionStore(Protocol):
    """Key-value store for session data (JSON-able dicts) with a time to live in seconds."""

    def get(self, sid: str) -> dict[str, Any] | None: ...
    def set(self, sid: str, data: dict[str, Any], ttl: int) -> None: ...
    def delete(self, sid: str) -> None: ...
    def touch(self, sid: str, ttl: int) -> bool: ...
    def ping(self) -> None: ...
    def close(self) -> None: ...


def store_from_url(url: str | None = None, zone: str | None = None, zones: str | None = None) -> SessionStore:
    """Open the store named by `url` (default: $SESSION_STORE_URL, else a SQLite file in the cwd).

    `zone` is the instance's own ($SPROUT_ZONE), `zones` the memcached nodes' ($SESSION_STORE_ZONES).
    """
    url = url or os.environ.get("SESSION_STORE_URL") or DEFAULT_URL
    zone = zone if zone is not None else os.environ.get("SPROUT_ZONE") or None
    zones = zones if zones is not None else os.environ.get("SESSION_STORE_ZONES") or None
    scheme = url.split(":", 1)[0].lower()
    if scheme == "sqlite":
        if not url.startswith("sqlite:///"):
            raise SessionStoreError(f"SESSION_STORE_URL {url!r}: write SQLite paths as sqlite:///path")
        return SQLiteStore(url[len("sqlite:///") :])
    if scheme == "memcached":
        return ReplicatedMemcachedStore(parse_memcached_url(url, zones), zone=zone)
    if scheme in ("redis", "rediss"):
        return RedisStore(url)
    raise SessionStoreError(
        f"SESSION_STORE_URL {url!r}: unknown scheme {scheme!r}; use sqlite:///, memcached:// or redis://"
    )


class SQLiteStore:
    """Sessions in one SQLite file (WAL mode), shared by every process on the machine."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._writes = 0

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            if self.path != ":memory:" and os.path.dirname(self.path):
                os.makedirs(os.path.dirname(self.path), exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=10, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            # Created on first use, not at construction, so importing an app has no side effect on disk.
            conn.execute(
                "CREATE TABLE IF NOT EXISTS sessions"
                " (id TEXT PRIMARY KEY, data TEXT NOT NULL, expires REAL NOT NULL)"
            )
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def get(self, sid: str) -> dict[str, Any] | None:
        """Return the session's data, or None when it is missing or expired."""
        row = self._conn().execute("SELECT data, expires FROM sessions WHERE id = ?", (sid,)).fetchone()
        if row is None or row[1] < time.time():
            return None
        data: dict[str, Any] = json.loads(row[0])
        return data

    def set(self, sid: str, data: dict[str, Any], ttl: int) -> None:
        """Store the session for `ttl` seconds."""
        conn = self._conn()
        conn.execute(
            "INSERT INTO sessions (id, data, expires) VALUES (?, ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET data = excluded.data, expires = excluded.expires",
            (sid, json.dumps(data), time.time() + ttl),
        )
        self._writes += 1
        if self._writes % 1000 == 0:
            conn.execute("DELETE FROM sessions WHERE expires < ?", (time.time(),))

    def delete(self, sid: str) -> None:
        """Forget the session."""
        self._conn().execute("DELETE FROM sessions WHERE id = ?", (sid,))

    def touch(self, sid: str, ttl: int) -> bool:
        """Extend the session's life; False when it no longer exists."""
        now = time.time()
        cur = self._conn().execute(
            "UPDATE sessions SET expires = ? WHERE id = ? AND expires >= ?", (now + ttl, sid, now)
        )
        return cur.rowcount > 0

    def ping(self) -> None:
        """Raise SessionStoreError unless the database answers."""
        try:
            self._conn().execute("SELECT 1").fetchone()
        except sqlite3.Error as exc:
            raise SessionStoreError(f"session store {self.path}: {exc}") from exc

    def close(self) -> None:
        """Close every connection this store opened."""
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()


class RedisStore:
    """Sessions in Redis, one key per session with a native expiry."""

    prefix = "sprout:session:"

    def __init__(self, url: str) -> None:
        import redis

        self.url = url
        self._redis = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)

    def get(self, sid: str) -> dict[str, Any] | None:
        """Return the session's data, or None."""
        raw = self._call(lambda: self._redis.get(self.prefix + sid))
        if raw is None:
            return None
        data: dict[str, Any] = json.loads(raw)
        return data

    def set(self, sid: str, data: dict[str, Any], ttl: int) -> None:
        """Store the session for `ttl` seconds."""
        self._call(lambda: self._redis.set(self.prefix + sid, json.dumps(data), ex=ttl))

    def delete(self, sid: str) -> None:
        """Forget the session."""
        self._call(lambda: self._redis.delete(self.prefix + sid))

    def touch(self, sid: str, ttl: int) -> bool:
        """Extend the session's life; False when it no longer exists."""
        return bool(self._call(lambda: self._redis.expire(self.prefix + sid, ttl)))

    def ping(self) -> None:
        """Raise SessionStoreError unless Redis answers."""
        self._call(self._redis.ping)

    def close(self) -> None:
        """Release the connection pool."""
        self._redis.close()

    def _call(self, fn: Callable[[], Any]) -> Any:
        import redis

        try:
            return fn()
        except redis.RedisError as exc:
            raise SessionStoreError(f"session store {self.url}: {exc}") from exc


@dataclass(frozen=True)
class MemcachedAddress:
    """One memcached node and the zone it lives in (None when the URL does not say)."""

    host: str
    port: int
    zone: str | None = None

    def __str__(self) -> str:
        where = f"{self.host}:{self.port}"
        return f"{self.zone}={where}" if self.zone else where


def parse_memcached_url(url: str, zones: str | None = None) -> list[MemcachedAddress]:
    """Parse ``memcached://h1:p1,h2:p2`` (zones from `zones`, ``a=h1:p1,b=h2:p2``) or the zone-annotated
    ``memcached://a=h1:p1,b=h2:p2`` into node addresses."""
    rest = url.split("://", 1)[1] if "://" in url else ""
    zone_of = {}
    for item in filter(None, (zones or "").split(",")):
        zone, _, hostport = item.strip().partition("=")
        zone_of[hostport.strip()] = zone.strip()
    nodes = []
    for item in filter(None, rest.split("/", 1)[0].split("?", 1)[0].split(",")):
        zone, _, hostport = item.rpartition("=")
        host, _, port = hostport.rpartition(":")
        if not host or not port.isdigit():
            raise SessionStoreError(
                f"SESSION_STORE_URL {url!r}: node {item!r} is not host:port or zone=host:port"
            )
        nodes.append(MemcachedAddress(host.strip("[]"), int(port), zone or zone_of.get(hostport) or None))
    if not nodes:
        raise SessionStoreError(f"SESSION_STORE_URL {url!r} names no memcached node")
    return nodes


@dataclass(frozen=True)
class _Record:
    version: int
    expires: float
    data: dict[str, Any] | None  # None marks a deletion (a tombstone), so an old copy cannot resurrect it

    def encode(self) -> bytes:
        return json.dumps({"v": self.version, "e": self.expires, "d": self.data}).encode()

    @staticmethod
    def decode(raw: bytes) -> _Record:
        obj = json.loads(raw)
        return _Record(int(obj["v"]), float(obj["e"]), obj["d"])


class _NodeDown(Exception):
    pass


class _Node:
    """A memcached client that fails fast and stays out of rotation for `retry_after` after a failure."""

    def __init__(self, address: MemcachedAddress, timeout: float, retry_after: float) -> None:
        from pymemcache.client.base import PooledClient

        self.address = address
        self.retry_after = retry_after
        self.down_until = 0.0
        self.client = PooledClient(
            (address.host, address.port),
            connect_timeout=timeout,
            timeout=timeout,
            no_delay=True,
            default_noreply=False,
        )

    def available(self) -> bool:
        return time.monotonic() >= self.down_until

    def call(self, method: str, *args: Any) -> Any:
        from pymemcache.exceptions import MemcacheError, MemcacheUnexpectedCloseError

        try:
            return getattr(self.client, method)(*args)
        except (MemcacheUnexpectedCloseError, ConnectionResetError, BrokenPipeError):
            pass  # most likely a pooled connection from before the node restarted: one retry, fresh socket
        except (MemcacheError, OSError) as exc:
            raise self._down(exc) from exc
        try:
            return getattr(self.client, method)(*args)
        except (MemcacheError, OSError) as exc:
            raise self._down(exc) from exc

    def _down(self, exc: Exception) -> _NodeDown:
        if self.available():
            log.warning(
                "memcached node %s failed (%s: %s); skipping it for %.1fs",
                self.address,
                type(exc).__name__,
                exc,
                self.retry_after,
            )
        self.down_until = time.monotonic() + self.retry_after
        return _NodeDown(str(self.address))


class ReplicatedMemcachedStore:
    """Sessions on memcached, each written to `replicas` nodes in different zones, newest version wins."""

    def __init__(
        self,
        nodes: list[MemcachedAddress],
        zone: str | None = None,
        replicas: int = 2,
        timeout: float = 0.25,
        retry_after: float = 2.0,
    ) -> None:
        self.zone = zone
        self.replicas = replicas
        self._groups: dict[str, list[_Node]] = {}
        for address in nodes:
            group = address.zone or f"{address.host}:{address.port}"
            self._groups.setdefault(group, []).append(_Node(address, timeout, retry_after))
        self._clock_lock = threading.Lock()
        self._last_version = 0

    def replicas_for(self, sid: str) -> list[_Node]:
        """The nodes holding `sid`: one per zone in `replicas` zones (rendezvous hashing), own zone first."""

        def score(name: str) -> bytes:
            return hashlib.sha1(f"{name}/{sid}".encode()).digest()

        zones = sorted(self._groups, key=score, reverse=True)[: self.replicas]
        chosen = [max(self._groups[z], key=lambda n: score(str(n.address))) for z in zones]
        return sorted(chosen, key=lambda n: n.address.zone != self.zone)

    def get(self, sid: str) -> dict[str, Any] | None:
        """Return the newest live copy of the session, repairing replicas that lag behind."""
        record = self._read(sid)
        if record is None or record.data is None or record.expires < time.time():
            return None
        return record.data

    def set(self, sid: str, data: dict[str, Any], ttl: int) -> None:
        """Write the session to every reachable replica under a new version."""
        self._write(sid, _Record(self._next_version(), time.time() + ttl, data))

    def delete(self, sid: str) -> None:
        """Replace the session by a tombstone so a replica that missed the delete cannot bring it back."""
        self._write(sid, _Record(self._next_version(), time.time() + DEFAULT_TTL, None))

    def touch(self, sid: str, ttl: int) -> bool:
        """Extend the session's life; False when it no longer exists."""
        record = self._read(sid)
        if record is None or record.data is None or record.expires < time.time():
            return False
        self._write(sid, _Record(record.version, time.time() + ttl, record.data))
        return True

    def ping(self) -> None:
        """Raise SessionStoreError unless at least one node answers (one replica is enough to serve)."""
        answered = []
        for node in (n for group in self._groups.values() for n in group):
            try:
                node.call("version")
                answered.append(node)
            except _NodeDown:
                continue
        if not answered:
            raise SessionStoreError(f"session store: no memcached node answers ({self._describe()})")

    def close(self) -> None:
        """Close every node's connections."""
        for group in self._groups.values():
            for node in group:
                node.client.close()

    def _next_version(self) -> int:
        # A hybrid clock: wall time in ns, but never repeating or going back within this process.
        with self._clock_lock:
            self._last_version = max(time.time_ns(), self._last_version + 1)
            return self._last_version

    def _read(self, sid: str) -> _Record | None:
        key = "s:" + sid
        answers: list[tuple[_Node, _Record | None, Any]] = []
        for node in self.replicas_for(sid):
            if not node.available():
                continue
            try:
                raw, cas = node.call("gets", key)
            except _NodeDown:
                continue
            answers.append((node, _Record.decode(raw) if raw is not None else None, cas))
        if not answers:
            raise SessionStoreError(f"session store: no replica of the session answers ({self._describe()})")
        newest = max((rec for _, rec, _ in answers if rec is not None), key=lambda r: r.version, default=None)
        if newest is not None:
            for node, rec, cas in answers:
                if rec is None or rec.version < newest.version:
                    self._repair(node, key, newest, cas if rec is not None else None)
        return newest

    def _repair(self, node: _Node, key: str, record: _Record, cas: Any) -> None:
        # cas/add rather than set: a newer write that raced in since our read must not be overwritten.
        ttl = int(record.expires - time.time())
        if ttl <= 0:
            return
        try:
            if cas is None:
                node.call("add", key, record.encode(), min(ttl, MEMCACHED_MAX_TTL))
            else:
                node.call("cas", key, record.encode(), cas, min(ttl, MEMCACHED_MAX_TTL))
        except _NodeDown:
            pass

    def _write(self, sid: str, record: _Record) -> None:
        key, value = "s:" + sid, record.encode()
        ttl = min(max(int(record.expires - time.time()), 1), MEMCACHED_MAX_TTL)
        written = 0
        for node in self.replicas_for(sid):
            if not node.available():
                continue
            try:
                node.call("set", key, value, ttl)
                written += 1
            except _NodeDown:
                continue
        if not written:
            raise SessionStoreError(f"session store: no replica accepted the write ({self._describe()})")

    def _describe(self) -> str:
        return ", ".join(str(n.address) for group in self._groups.values() for n in group)


def new_session_id() -> str:
    """A fresh unguessable session id (256 random bits)."""
    return secrets.token_urlsafe(32)


class SessionMiddleware:
    """ASGI middleware giving each request a server-side `scope["session"]` (Starlette: `request.session`).

    The session is loaded before the app runs and saved before the response headers leave, so the next
    request (on any instance) sees it.  Only changed sessions are written; an emptied session is deleted.
    """

    def __init__(
        self,
        app: ASGIApp,
        store: SessionStore | None = None,
        *,
        secret: str | bytes | None = None,
        cookie_name: str = "session",
        max_age: int = DEFAULT_TTL,
        same_site: str = "lax",
        https_only: bool = False,
    ) -> None:
        self.app = app
        self.store = store if store is not None else store_from_url()
        self.cookie_name = cookie_name
        self.max_age = max_age
        self.cookie_flags = f"Path=/; Max-Age={max_age}; HttpOnly; SameSite={same_site}" + (
            "; Secure" if https_only else ""
        )
        self.secret = _secret_bytes(secret)

    def sign(self, sid: str) -> str:
        """The cookie value for `sid`: the id and its HMAC."""
        mac = hmac.new(self.secret, sid.encode(), hashlib.sha256).digest()
        return sid + "." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()

    def unsign(self, value: str) -> str | None:
        """The session id inside a cookie value, or None when the signature does not match."""
        sid, _, _ = value.partition(".")
        return sid if sid and hmac.compare_digest(self.sign(sid), value) else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        sid = self._cookie_sid(scope)
        data: dict[str, Any] = {}
        if sid is not None:
            try:
                loaded = await asyncio.to_thread(self.store.get, sid)
            except SessionStoreError as exc:
                log.error("%s", exc)
                await _unavailable(send)
                return
            if loaded is None:
                sid = None  # never adopt an id the store does not know (session fixation)
            else:
                data = loaded
        before = json.dumps(data, sort_keys=True, default=str)
        scope["session"] = data

        async def send_with_session(message: Message) -> None:
            nonlocal sid
            if message["type"] == "http.response.start":
                session = scope["session"]
                if json.dumps(session, sort_keys=True, default=str) != before:
                    headers = list(message.get("headers", []))
                    if session:
                        sid = sid or new_session_id()
                        await asyncio.to_thread(self.store.set, sid, dict(session), self.max_age)
                        cookie = f"{self.cookie_name}={self.sign(sid)}; {self.cookie_flags}"
                    else:
                        if sid is not None:
                            await asyncio.to_thread(self.store.delete, sid)
                        cookie = f"{self.cookie_name}=; Path=/; Max-Age=0; HttpOnly"
                    headers.append((b"set-cookie", cookie.encode("latin-1")))
                    message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_session)

    def _cookie_sid(self, scope: Scope) -> str | None:
        for name, value in scope.get("headers", []):
            if name != b"cookie":
                continue
            for part in value.decode("latin-1").split(";"):
                key, _, val = part.strip().partition("=")
                if key == self.cookie_name and val:
                    return self.unsign(val)
        return None


def _secret_bytes(secret: str | bytes | None) -> bytes:
    secret = secret or os.environ.get("SESSION_SECRET")
    if not secret:
        # Session ids are 256 random bits, so the signature only keeps probes away from the store; a key
        # shared by every instance of the app is what matters, and this one is, but set SESSION_SECRET.
        log.warning("SESSION_SECRET is not set; signing session cookies with a key derived from SPROUT_APP")
        secret = "sprout-session:" + os.environ.get("SPROUT_APP", "app")
    return secret.encode() if isinstance(secret, str) else secret


async def _unavailable(send: Send) -> None:
    body = b"Service unavailable: the session store cannot be reached. Please retry in a moment.\n"
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"retry-after", b"2")],
        }
    )
    await send({"type": "http.response.body", "body": body})

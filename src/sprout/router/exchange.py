"""One proxied request: pick a target, send the request, relay the response, retry when it is safe."""

from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING, Final

from sprout.router import wire
from sprout.router.balancer import choose
from sprout.router.cache import Entry, cache_lifetime
from sprout.router.target import State

_CLASS_OF: Final = wire.CLASS_OF
_CONTENT_LENGTH: Final = wire.CONTENT_LENGTH
_STATUS_LINES: Final = wire.STATUS_LINES
_DRAINING: Final = State.DRAINING

if TYPE_CHECKING:
    from sprout.router.proxy import ClientProtocol
    from sprout.router.routes import Route
    from sprout.router.target import Target
    from sprout.router.upstream import UpstreamConnection

_perf: Final = time.perf_counter
_random: Final = random.random
# Deadlines from the real clock (the loop's, monotonic): the coarse router clock lags by up to a tick,
# which would let a timeout fire early.
_monotonic: Final = time.monotonic
CRLF: Final = b"\r\n"
_LAST_CHUNK: Final = b"0\r\n\r\n"
#: The access log's `target\tversion\tzone` of a request that reached no target.
NO_TARGET: Final = b"\t\t"
# Request bytes buffered while no upstream connection is ready before the client is paused.
_PENDING_LIMIT: Final = 256 * 1024


#: Largest response (by Content-Length) held back until complete, so it can still be retried.
RESPONSE_HOLD_BYTES: Final = 64 * 1024


class Exchange:
    """The life of one request from its head to the end of its response (or its tunnel)."""

    # Class-level defaults: a new exchange only writes the fields that differ (cheaper than 36 slots).
    local: tuple[int, bytes] | None = None
    head = b""  # the request head for the target, set by the client protocol once it is built
    upgrade = False
    tunnel_pending = b""
    request_done = False
    replay_size = 0
    target: Target | None = None
    conn: UpstreamConnection | None = None
    tried: tuple[Target, ...] = ()
    written = False
    deadline = 0.0
    resp_status = 0
    resp_headers = b""
    resp_chunked = False
    until_close = False
    informational = False
    bytes_out = 0
    done = False
    cache_key: tuple[bytes, ...] | None = None
    cache_ttl = 0
    cache_body: list[bytes] | None = None
    cache_size = 0
    resp_hold = False

    def __init__(
        self,
        client: ClientProtocol,
        route: Route | None,
        method: bytes,
        path: bytes,
        host: bytes,
        rid: bytes,
        body_mode: int,
        keep_alive: bool,
    ) -> None:
        self.client = client
        self.route = route
        self.method = method
        self.path = path
        self.host = host
        self.rid = rid
        self.body_mode = body_mode  # 0 none, 1 Content-Length, 2 chunked
        self.keep_alive = keep_alive
        self.started = _perf()
        self.out: list[bytes] = []
        self.replay: list[bytes] | None = []
        self.resp_out: list[bytes] = []
        self.close_after = not keep_alive

    # -- request side ---------------------------------------------------------------------------------
    def answer_locally(self) -> None:
        """Send the response the router produced itself (`local`: an error or a cache hit) and finish."""
        assert self.local is not None
        status, data = self.local
        self.resp_status = status
        self.bytes_out = len(data)
        self.client.write(data)
        self._finish(status)

    def request_body(self, data: bytes) -> None:
        """A piece of request body arrived from the client (already de-chunked by the parser)."""
        if self.done:
            return
        piece = b"%x\r\n%s\r\n" % (len(data), data) if self.body_mode == 2 else data
        self.out.append(piece)
        replay = self.replay
        if replay is not None:
            self.replay_size += len(piece)
            if self.replay_size > self.client.router.config.replay_limit:
                self.replay = None
            else:
                replay.append(piece)

    def request_complete(self) -> None:
        """The client finished sending the request."""
        self.request_done = True
        if self.body_mode == 2 and not self.done:
            self.out.append(_LAST_CHUNK)
            if self.replay is not None:
                self.replay.append(_LAST_CHUNK)
        if self.conn is not None:
            self.deadline = _monotonic() + self.client.router.config.response_timeout

    def flush_request(self) -> None:
        """Write the queued request bytes to the upstream connection in one call."""
        out = self.out
        if not out:
            return
        conn = self.conn
        if conn is not None and conn.transport is not None:
            self.out = []
            conn.transport.write(out[0] if len(out) == 1 else b"".join(out))
        elif sum(len(p) for p in out) > _PENDING_LIMIT:
            self.client.pause_for_upstream()

    def send(self) -> None:
        """Pick a target (another one after a failed attempt) and send what has arrived so far."""
        route = self.route
        assert route is not None
        groups = route.groups
        if len(groups) == 1 and not self.tried:
            # The common case, `choose` inlined: one group, nothing to exclude; power of two choices.
            group = groups[0]
            healthy = group.healthy
            n = len(healthy)
            target: Target | None = None
            if group.weight > 0 and n:
                if n == 1:
                    target = healthy[0]
                elif n == 2:
                    # With two candidates the second draw can only pick the other one.
                    i = int(_random() * 2)
                    target = healthy[i]
                    other = healthy[1 - i]
                    if other.stats.in_flight < target.stats.in_flight:
                        target = other
                else:
                    i = int(_random() * n)
                    j = int(_random() * (n - 1))
                    if j >= i:
                        j += 1
                    target = healthy[i]
                    other = healthy[j]
                    if other.stats.in_flight < target.stats.in_flight:
                        target = other
        else:
            target = choose(groups, self.tried)
        if target is None:
            if self.tried:
                self._respond_error(502, "no target could take the request")
            else:
                self._respond_error(503, "no healthy target")
            return
        self.target = target
        target.stats.in_flight += 1
        target.group_stats.in_flight += 1
        target.exchanges.add(self)
        pool = target.pool
        assert pool is not None
        conn = pool.acquire()
        if conn is not None:
            self._attach(conn)
        else:
            self.client.router.spawn(self._connect(target))

    async def _connect(self, target: Target) -> None:
        pool = target.pool
        assert pool is not None
        try:
            conn = await pool.connect()
        except (OSError, TimeoutError) as exc:
            if self.done or self.target is not target:
                return
            target.passive_failure(f"connect failed: {exc or type(exc).__name__}")
            self._leave_target(502)
            self._retry_or_fail(502, "upstream connect failed", delivered=False)
            return
        if self.done or self.target is not target:
            pool.release(conn)
            return
        self._attach(conn)

    def _attach(self, conn: UpstreamConnection) -> None:
        conn.exchange = self
        self.conn = conn
        self.written = True
        out = self.out
        self.out = []
        assert conn.transport is not None
        conn.transport.write(b"".join([self.head, *out]) if out else self.head)
        client = self.client
        if self.request_done:
            self.deadline = _monotonic() + client.router.config.response_timeout
        if client.paused_upstream:
            client.resume_for_upstream()

    def _leave_target(self, status: int) -> None:
        """Account the failed attempt on the current target and remember not to pick it again."""
        target = self.target
        if target is None:
            return
        self.target = None
        self._release_target(target, status, _perf() - self.started)
        self.tried = (*self.tried, target)

    def _release_target(self, target: Target, status: int, elapsed: float) -> None:
        stats = target.stats
        stats.in_flight -= 1
        stats.observe(status, elapsed)
        target.group_stats.in_flight -= 1
        target.group_stats.observe(status, elapsed)
        target.exchanges.discard(self)
        if target.state is _DRAINING and stats.in_flight == 0:
            self.client.router.drain_progress(target)

    def _retry_or_fail(self, status: int, reason: str, delivered: bool) -> None:
        retryable = (
            self.replay is not None
            and len(self.tried) <= self.client.router.config.max_retries
            and (not delivered or self.method in wire.IDEMPOTENT)
            and not self.upgrade
        )
        if retryable:
            assert self.replay is not None
            self.out = list(self.replay)
            self.written = False
            self.send()
        else:
            self._respond_error(status, reason)

    # -- response side --------------------------------------------------------------------------------
    def response_head(
        self, status: int, lines: list[bytes], special: list[tuple[bytes, bytes]], upstream_keep_alive: bool
    ) -> None:
        """The upstream's response head arrived: build the client's head.

        `lines` is a status-line slot then the end-to-end header lines; `special` the other headers.
        """
        if 100 <= status < 200 and status != 101:
            self.informational = True
            return
        self.deadline = 0.0
        self.resp_status = status
        if len(special) == 1 and _CLASS_OF.get(special[0][0]) == _CONTENT_LENGTH:
            # The common case: nothing hop-by-hop, framed by one Content-Length.
            length: bytes | None = special[0][1]
            chunked = False
            upgrade_value = b""
        else:
            length, chunked, upgrade_value = wire.response_framing(lines, special)
        lines[0] = _STATUS_LINES.get(status) or wire.status_line(status)
        route = self.route
        caching = route is not None and route.cache is not None and self.method == b"GET"
        if caching and self.cache_key is not None:
            self.cache_ttl = cache_lifetime(status, special)
            if self.cache_ttl > 0:
                self.cache_body = []
                self.resp_headers = b"".join(lines[1:])
        if status == 101:
            lines.append(b"Connection: upgrade\r\nUpgrade: %s\r\n" % upgrade_value)
        elif self.method == b"HEAD" or status == 204 or status == 304:
            if length is not None and status != 204:
                lines.append(b"Content-Length: %s\r\n" % length)
        elif length is not None:
            lines.append(b"Content-Length: %s\r\n" % length)
            # A small response is held until complete (like nginx's response buffering): an upstream
            # that dies mid-response has then sent the client nothing, and the request can be retried.
            self.resp_hold = int(length) <= RESPONSE_HOLD_BYTES
        else:
            self.until_close = not chunked
            if self.client.http11:
                lines.append(b"Transfer-Encoding: chunked\r\n")
                self.resp_chunked = True
            else:
                self.close_after = True
        if caching:
            lines.append(b"X-Cache: MISS\r\n")
        if route is not None and route.hsts and self.client.secure:
            lines.append(route.hsts)
        if self.upgrade and status != 101:
            self.close_after = True
        if self.close_after or not self.request_done:
            self.close_after = True
            lines.append(b"X-Request-Id: %s\r\nConnection: close\r\n\r\n" % self.rid)
        elif not self.client.http11:
            # An HTTP/1.0 client only keeps the connection when the response says so.
            lines.append(b"X-Request-Id: %s\r\nConnection: keep-alive\r\n\r\n" % self.rid)
        else:
            lines.append(b"X-Request-Id: %s\r\n\r\n" % self.rid)
        self.resp_out.append(b"".join(lines))
        if self.method == b"HEAD" and status != 101:
            conn = self.conn
            if conn is not None:
                conn.reset_parser()
            self.response_complete(upstream_keep_alive)

    def response_body(self, data: bytes) -> None:
        """A piece of response body arrived from the upstream."""
        self.bytes_out += len(data)
        if self.resp_chunked:
            self.resp_out.append(b"%x\r\n%s\r\n" % (len(data), data))
        else:
            self.resp_out.append(data)
        body = self.cache_body
        if body is not None:
            self.cache_size += len(data)
            if self.cache_size > self.client.router.config.cache_object_bytes:
                self.cache_body = None
            else:
                body.append(data)

    def flush_response(self) -> None:
        """Write the queued response bytes to the client in one call."""
        out = self.resp_out
        if out:
            self.resp_out = []
            self.client.write(out[0] if len(out) == 1 else b"".join(out))

    def response_complete(self, upstream_keep_alive: bool) -> None:
        """The upstream finished the response: return the connection and finish."""
        if self.informational:
            self.informational = False
            return
        if self.resp_status == 101 or self.done:
            return
        out = self.resp_out
        if self.resp_chunked:
            out.append(_LAST_CHUNK)
        self.resp_hold = False
        client = self.client
        if out:
            self.resp_out = []
            if not client.closed:
                client.transport.write(out[0] if len(out) == 1 else b"".join(out))  # type: ignore[union-attr]
        conn = self.conn
        self.conn = None
        if conn is not None:
            pool = conn.pool
            if upstream_keep_alive and self.request_done and not self.until_close:
                pool.release(conn)
            else:
                conn.close()
        body = self.cache_body
        route = self.route
        if body is not None and self.cache_key is not None and route is not None and route.cache is not None:
            expires = client.router.clock + self.cache_ttl
            route.cache.put(
                self.cache_key, Entry(self.resp_status, self.resp_headers, b"".join(body), expires)
            )
        self._finish(self.resp_status)

    def upstream_lost(self, conn: UpstreamConnection, exc: Exception | None) -> None:
        """The upstream connection closed while lent to this exchange."""
        if self.done or conn is not self.conn:
            return
        self.conn = None
        if self.resp_status == 101:
            self.client.close()
            self._finish(101)
        elif self.resp_status and self.until_close:
            self.response_complete(False)
        elif self.resp_status == 0:
            self._leave_target(502)
            self._retry_or_fail(502, "upstream closed the connection before responding", delivered=True)
        elif self.resp_hold and self.request_done:
            # Nothing of this response reached the client: as if the upstream had never answered.
            self._forget_response()
            self._leave_target(502)
            self._retry_or_fail(502, "upstream closed the connection mid-response", delivered=True)
        else:
            self.close_after = True
            self.flush_response()
            self.client.close()
            self._finish(self.resp_status)

    def _forget_response(self) -> None:
        """Drop a held, unsent response so the exchange can start over on another target."""
        self.resp_out = []
        self.resp_status = 0
        self.resp_hold = False
        self.resp_chunked = False
        self.until_close = False
        self.informational = False
        self.bytes_out = 0
        self.cache_body = None
        self.cache_size = 0
        self.close_after = not self.keep_alive

    def upstream_failed(self, reason: str, protocol: bool) -> None:
        """The upstream sent something that is not HTTP: give up on it (never retried)."""
        conn = self.conn
        self.conn = None
        if conn is not None:
            conn.close()
        if self.resp_status:
            self.close_after = True
            self.client.close()
            self._finish(self.resp_status)
        else:
            self._respond_error(502, "invalid response from upstream" if protocol else reason)

    def upstream_upgraded(self, rest: bytes) -> None:
        """The upstream answered 101: from now on bytes flow both ways untouched."""
        conn = self.conn
        if conn is None:
            return
        conn.tunnel = True
        self.flush_response()
        if rest:
            self.client.write(rest)
        self.client.start_tunnel(self)
        if self.tunnel_pending:
            self.tunnel_to_upstream(self.tunnel_pending)
            self.tunnel_pending = b""

    def tunnel_to_client(self, data: bytes) -> None:
        """Tunnel bytes from the upstream to the client."""
        self.client.write(data)

    def tunnel_to_upstream(self, data: bytes) -> None:
        """Tunnel bytes from the client to the upstream (queued until the upstream said 101)."""
        conn = self.conn
        if conn is not None and conn.tunnel and conn.transport is not None:
            conn.transport.write(data)
        else:
            self.tunnel_pending += data

    # -- flow control and endings ---------------------------------------------------------------------
    def pause_client_reading(self) -> None:
        """The upstream socket is full: stop reading the client."""
        self.client.pause_for_upstream()

    def resume_client_reading(self) -> None:
        """The upstream socket drained: read the client again."""
        self.client.resume_for_upstream()

    def cut(self, status: int, reason: str) -> None:
        """Drop the upstream side and answer `status` (504 at a deadline, 413 on a body over the limit)."""
        if self.done:
            return
        conn = self.conn
        self.conn = None
        if conn is not None:
            conn.close()
        self._respond_error(status, reason)

    def client_gone(self) -> None:
        """The client connection closed before the exchange ended."""
        if self.done:
            return
        conn = self.conn
        self.conn = None
        if conn is not None:
            conn.close()
        self.close_after = True
        self._finish(self.resp_status or 499)

    def _respond_error(self, status: int, reason: str) -> None:
        if self.resp_status:
            # Part of a response is already out: the only honest signal left is closing the connection.
            self.close_after = True
            self.flush_response()
            self.client.close()
            self._finish(self.resp_status)
            return
        if not self.request_done:
            self.close_after = True
        self.resp_status = status
        self.client.write(wire.local_response(status, reason, self.rid, self.close_after))
        self._finish(status)

    def _finish(self, status: int) -> None:
        if self.done:
            return
        self.done = True
        target = self.target
        elapsed = _perf() - self.started
        if target is not None:
            self._release_target(target, status, elapsed)
        router = self.client.router
        log = router.access_log
        if log is not None:
            t = target or (self.tried[-1] if self.tried else None)
            log.record(
                (
                    time.time(),
                    self.rid,
                    self.host,
                    self.method,
                    self.path,
                    status,
                    self.bytes_out,
                    elapsed,
                    t.log_where if t else NO_TARGET,
                    len(self.tried),
                    self.route.log_name if self.route is not None else b"",
                )
            )
        self.client.exchange_done(self)

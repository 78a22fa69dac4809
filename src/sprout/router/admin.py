"""The admin API: a small HTTP/1.1 server on its own listener, every call but /healthz needs the token."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST

from sprout.errors import NotFoundError, SproutError, UserError
from sprout.router import native
from sprout.router.admission import admit_table
from sprout.router.config import RouterConfig
from sprout.router.metrics import Reading, exposition
from sprout.router.router import Router

log = logging.getLogger("sprout.router.admin")
#: Longest admin request head (request line and headers); the StreamReader limit of an admin connection.
MAX_HEAD = 16 * 1024
_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    413: "Payload Too Large",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}
_UNAUTHORIZED = {"error": "missing or wrong bearer token; pass the router's admin token"}


class _HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class AdminServer:
    """Routes admin requests to the Router; one request per connection keeps it simple and safe.

    Nothing but the head is read before the token is checked, so an unauthenticated caller costs a
    head's worth of memory for at most `admin_header_timeout`; connections beyond
    `admin_max_connections` are refused with 503 before anything is read.
    """

    def __init__(self, router: Router, token: str, config: RouterConfig) -> None:
        self.router = router
        #: `compiled` or `pure: <why>` (`sprout.router.native`), told by the unauthenticated /healthz.
        self.hot_path = native.running()
        self.token = token.encode()
        self.config = config
        self.active = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one admin connection."""
        if self.active >= self.config.admin_max_connections:
            await _respond(writer, *_json(503, {"error": "too many admin connections; retry shortly"}))
            return
        self.active += 1
        try:
            try:
                status, ctype, body = await self._serve(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                writer.close()
                return
            except asyncio.LimitOverrunError:
                status, ctype, body = _json(431, {"error": f"request head over {MAX_HEAD} bytes"})
            except TimeoutError:
                status, ctype, body = _json(408, {"error": "request not received in time"})
            await _respond(writer, status, ctype, body)
        finally:
            self.active -= 1

    async def _serve(self, reader: asyncio.StreamReader) -> tuple[int, str, bytes]:
        config = self.config
        async with asyncio.timeout(config.admin_header_timeout):
            raw = await reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        try:
            method, target, _ = lines[0].split(" ", 2)
        except ValueError:
            return _json(400, {"error": "malformed request line"})
        headers: dict[str, list[str]] = {}
        for line in lines[1:]:
            if ":" in line:
                name, _, value = line.partition(":")
                headers.setdefault(name.strip().lower(), []).append(value.strip())
        path = target.split("?", 1)[0]
        if path == "/healthz" and method == "GET":
            return _json(200, {"ok": True, "hot_path": self.hot_path})
        auth = headers.get("authorization", [""])
        if (
            len(auth) != 1
            or not auth[0].startswith("Bearer ")
            or not hmac.compare_digest(auth[0][7:].strip().encode(), self.token)
        ):
            return _json(401, _UNAUTHORIZED)
        try:
            length = body_length(headers, config.admin_max_body)
            body = b""
            if length:
                async with asyncio.timeout(config.admin_body_timeout):
                    body = await reader.readexactly(length)
            if path == "/metrics" and method == "GET":
                reading = Reading.of(self.router)
                text = await asyncio.get_running_loop().run_in_executor(None, exposition, reading)
                return 200, CONTENT_TYPE_LATEST, text
            return self._dispatch(method, path, body)
        except _HttpError as exc:
            return _json(exc.status, {"error": str(exc)})
        except NotFoundError as exc:
            return _json(404, {"error": str(exc)})
        except UserError as exc:
            return _json(400, {"error": str(exc)})
        except SproutError as exc:
            return _json(500, {"error": str(exc)})
        except (asyncio.IncompleteReadError, ConnectionError, TimeoutError):
            raise
        except Exception:
            # One bad request must never take the admin API (or the router) with it.
            log.exception("admin %s %s failed", method, path)
            return _json(500, {"error": f"internal error serving {method} {path}; see the router's log"})

    def _dispatch(self, method: str, path: str, body: bytes) -> tuple[int, str, bytes]:
        router = self.router
        parts = [p for p in path.split("/") if p]
        if parts == ["table"]:
            if method == "GET":
                return _json(200, router.table())
            if method == "PUT":
                spec, rejected = admit_table(_body_json(body), router.spec)
                router.apply_table(spec)
                for rejection in rejected:
                    log.warning("route %s rejected: %s", rejection.route, rejection.error)
                return _json(200, {**router.table(), "rejected": [r.to_json() for r in rejected]})
        elif len(parts) == 3 and parts[0] == "routes" and parts[2] == "weights" and method == "PUT":
            weights = _body_json(body)
            if not isinstance(weights, dict):
                raise _HttpError(400, 'weights must be a JSON object like {"blue": 0, "green": 100}')
            router.set_weights(parts[1], weights)
            return _json(200, router.table())
        elif len(parts) == 3 and parts[0] == "targets" and parts[2] == "drain" and method == "POST":
            doc = _body_json(body) if body.strip() else {}
            timeout = doc.get("timeout") if isinstance(doc, dict) else None
            if timeout is not None and (not isinstance(timeout, int | float) or timeout < 0):
                raise _HttpError(400, "timeout must be a number of seconds >= 0")
            router.drain(parts[1], None if timeout is None else float(timeout))
            return _json(200, router.find_target(parts[1]).describe())
        elif len(parts) == 2 and parts[0] == "targets" and method == "GET":
            return _json(200, router.find_target(parts[1]).describe())
        elif parts == ["health"] and method == "GET":
            return _json(200, router.health())
        elif parts == ["metrics.json"] and method == "GET":
            return _json(200, router.metrics_json())
        else:
            raise _HttpError(404, f"no admin endpoint {method} {path}")
        raise _HttpError(405, f"method {method} not allowed on {path}")


def body_length(headers: dict[str, list[str]], limit: int) -> int:
    """The body size a request head announces; 400 for a malformed or repeated length, 413 over `limit`."""
    if "transfer-encoding" in headers:
        raise _HttpError(400, "Transfer-Encoding is not accepted by the admin API; send a Content-Length")
    values = headers.get("content-length", [])
    if not values:
        return 0
    if len(values) > 1:
        raise _HttpError(400, "more than one Content-Length header")
    value = values[0]
    if not (value.isascii() and value.isdigit()) or len(value) > 18:
        raise _HttpError(400, f"Content-Length {value[:40]!r} is not a byte count")
    length = int(value)
    if length > limit:
        raise _HttpError(413, f"body of {length} bytes is over the admin limit of {limit}")
    return length


async def _respond(writer: asyncio.StreamWriter, status: int, ctype: str, body: bytes) -> None:
    head = (
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\nContent-Type: {ctype}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    try:
        writer.write(head + body)
        await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


def _body_json(body: bytes) -> Any:
    try:
        return json.loads(body or b"null")
    except json.JSONDecodeError as exc:
        raise _HttpError(400, f"body is not JSON: {exc}") from exc


def _json(status: int, doc: Any) -> tuple[int, str, bytes]:
    return status, "application/json", json.dumps(doc).encode()

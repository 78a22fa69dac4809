"""The admin API: a small HTTP/1.1 server on its own listener, every call but /healthz needs the token."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from typing import Any

from sprout.errors import NotFoundError, SproutError, UserError
from sprout.router.admission import admit_table
from sprout.router.router import Router

log = logging.getLogger("sprout.router.admin")
_MAX_BODY = 16 * 1024 * 1024
_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Payload Too Large",
    500: "Internal Server Error",
}


class _HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class AdminServer:
    """Routes admin requests to the Router; one request per connection keeps it simple and safe."""

    def __init__(self, router: Router, token: str) -> None:
        self.router = router
        self.token = token.encode()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one admin connection."""
        try:
            status, ctype, body = await self._serve(reader)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, TimeoutError):
            writer.close()
            return
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

    async def _serve(self, reader: asyncio.StreamReader) -> tuple[int, str, bytes]:
        async with asyncio.timeout(30):
            raw = await reader.readuntil(b"\r\n\r\n")
            lines = raw.decode("latin-1").split("\r\n")
            try:
                method, target, _ = lines[0].split(" ", 2)
            except ValueError:
                return _json(400, {"error": "malformed request line"})
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0") or 0)
            if length > _MAX_BODY:
                return _json(413, {"error": "body too large"})
            body = await reader.readexactly(length) if length else b""
        path = target.split("?", 1)[0]
        if path == "/healthz" and method == "GET":
            return _json(200, {"ok": True})
        auth = headers.get("authorization", "")
        if not auth.startswith("Bearer ") or not hmac.compare_digest(auth[7:].strip().encode(), self.token):
            return _json(401, {"error": "missing or wrong bearer token; pass the router's admin token"})
        try:
            return self._dispatch(method, path, body)
        except _HttpError as exc:
            return _json(exc.status, {"error": str(exc)})
        except NotFoundError as exc:
            return _json(404, {"error": str(exc)})
        except UserError as exc:
            return _json(400, {"error": str(exc)})
        except SproutError as exc:
            return _json(500, {"error": str(exc)})

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
        elif parts == ["metrics"] and method == "GET":
            return 200, "text/plain; version=0.0.4; charset=utf-8", router.metrics_text().encode()
        elif parts == ["metrics.json"] and method == "GET":
            return _json(200, router.metrics_json())
        else:
            raise _HttpError(404, f"no admin endpoint {method} {path}")
        raise _HttpError(405, f"method {method} not allowed on {path}")


def _body_json(body: bytes) -> Any:
    try:
        return json.loads(body or b"null")
    except json.JSONDecodeError as exc:
        raise _HttpError(400, f"body is not JSON: {exc}") from exc


def _json(status: int, doc: Any) -> tuple[int, str, bytes]:
    return status, "application/json", json.dumps(doc).encode()

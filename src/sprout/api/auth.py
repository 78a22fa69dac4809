"""The API token: a private file under SPROUT_HOME and a middleware that demands it on every request."""

from __future__ import annotations

import hmac
import json
import os
import secrets
from collections.abc import Callable
from pathlib import Path

from starlette.types import ASGIApp, Receive, Scope, Send

from sprout.errors import AuthError

TOKEN_BYTES = 32


def ensure_token(path: Path) -> str:
    """The token in `path`, created (mode 0600, 32 random bytes, urlsafe) when missing."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return read_token(path)
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(token + "\n")
    return token


def read_token(path: Path) -> str:
    """The token kept in `path`; refuse a file other users can read."""
    try:
        mode = path.stat().st_mode & 0o777
        token = path.read_text(encoding="ascii").strip()
    except FileNotFoundError as exc:
        raise AuthError(
            f"{path}: no API token yet (start the control plane with `sprout daemon start`)"
        ) from exc
    if mode & 0o077:
        raise AuthError(f"{path}: token file has mode {mode:o}; run `chmod 600 {path}`")
    if not token:
        raise AuthError(f"{path}: token file is empty; delete it and restart the daemon")
    return token


class BearerAuth:
    """ASGI middleware: every HTTP request without `Authorization: Bearer <token>` gets 401, whatever its path.

    `lets_through` may open chosen requests by other means (the dashboard's sign-in link and its
    session cookie); it sees the request before anything else does.
    """

    def __init__(self, app: ASGIApp, token: str, lets_through: Callable[[Scope], bool] | None = None) -> None:
        self._app = app
        self._expected = f"Bearer {token}".encode()
        self._lets_through = lets_through

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] in ("http", "websocket")
            and not self._authorized(scope)
            and not (self._lets_through is not None and self._lets_through(scope))
        ):
            await self._deny(scope, send)
            return
        await self._app(scope, receive, send)

    def _authorized(self, scope: Scope) -> bool:
        given = b""
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                given = value
                break
        return hmac.compare_digest(given, self._expected)

    async def _deny(self, scope: Scope, send: Send) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        body = json.dumps(
            {"error": "missing or wrong API token (send `Authorization: Bearer <run/api.token>`)"}
        )
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"www-authenticate", b'Bearer realm="sprout"'),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body.encode()})

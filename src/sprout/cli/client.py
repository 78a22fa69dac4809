"""The CLI's client of the control-plane API: finds (or starts) the daemon, sends the token, maps errors."""

from __future__ import annotations

import http.client
import json
import time
from typing import Any
from urllib.parse import urlencode, urlsplit

from sprout import errors
from sprout.api.auth import read_token
from sprout.controlplane.lifecycle import DaemonInfo, running_daemon, start_daemon
from sprout.errors import AuthError, ServiceError, SproutError
from sprout.paths import Home

#: Long enough for `down` of a large fleet (each instance gets its stop grace in parallel).
TIMEOUT = 120.0
#: `apply` may run a version's release command (bootstrap with `install`, then migrations) first.
APPLY_TIMEOUT = 1800.0
#: A kept-alive connection idle this long is replaced before the next call: the API server closes idle
#: connections after 5 s, and a request sent as it closes one would fail without having been read.
REUSE_IDLE_S = 2.0
_KINDS: dict[str, type[SproutError]] = {
    name: cls
    for name, cls in vars(errors).items()
    if isinstance(cls, type) and issubclass(cls, SproutError) and cls is not errors.ManifestError
}


class Unreachable(ServiceError):
    """The daemon did not answer (not running, or gone mid-call): nothing is known of the call's effect."""


class ApiClient:
    """Calls the daemon's API with the bearer token; raises the SproutError the daemon reported."""

    def __init__(self, base_url: str, token: str, timeout: float = TIMEOUT) -> None:
        # The standard library's client: the API is JSON over loopback, and the CLI starts faster
        # without importing a full-featured HTTP stack (every command pays for its imports).
        parts = urlsplit(base_url)
        if parts.scheme != "http" or parts.hostname is None:
            raise ServiceError(f"control plane at {base_url}: not an http:// URL")
        self.base_url = base_url
        self._host, self._port = parts.hostname, parts.port or 80
        self._headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        self._timeout = timeout
        self._conn: http.client.HTTPConnection | None = None
        self._used = 0.0

    @classmethod
    def for_daemon(cls, home: Home, daemon: DaemonInfo) -> ApiClient:
        """A client of a running daemon of `home`."""
        return cls(daemon.api_url, read_token(home.token_file))

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        """GET `path` with query parameters (None values left out)."""
        return self._call("GET", path, params)

    def post(
        self, path: str, body: dict[str, Any] | None = None, timeout: float | None = None
    ) -> dict[str, Any]:
        """POST a JSON body (`timeout` for calls that run long work, such as a release phase)."""
        return self._call("POST", path, {}, body or {}, timeout)

    def delete(self, path: str, **params: Any) -> dict[str, Any]:
        """DELETE `path`."""
        return self._call("DELETE", path, params)

    def close(self) -> None:
        """Close the kept-alive connection."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        if self._conn is not None and time.monotonic() - self._used > REUSE_IDLE_S:
            self.close()
        if self._conn is None:
            self._conn = http.client.HTTPConnection(self._host, self._port, timeout=timeout)
        elif self._conn.sock is not None:
            self._conn.sock.settimeout(timeout)
        self._conn.timeout = timeout
        return self._conn

    def _call(
        self,
        method: str,
        path: str,
        params: dict[str, Any],
        body: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        query = urlencode({k: str(v) for k, v in params.items() if v is not None})
        target = f"{path}?{query}" if query else path
        headers = dict(self._headers)
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        try:
            conn = self._connection(self._timeout if timeout is None else timeout)
            conn.request(method, target, body=payload, headers=headers)
            response = conn.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise Unreachable(
                f"control plane at {self.base_url}: {method} {path} failed ({exc or type(exc).__name__}); "
                "check `sprout daemon status` and logs/daemon.log"
            ) from exc
        self._used = time.monotonic()
        if response.will_close:
            self.close()
        try:
            doc = json.loads(raw)
        except ValueError:
            doc = {"error": raw[:200].decode("utf-8", "replace")}
        if response.status == 401:
            raise AuthError(f"control plane at {self.base_url}: {doc.get('error', 'unauthorized')}")
        if response.status >= 400:
            kind = _KINDS.get(str(doc.get("kind")), SproutError)
            raise kind(str(doc.get("error") or f"{method} {path}: HTTP {response.status}"))
        if not isinstance(doc, dict):
            raise ServiceError(f"control plane at {self.base_url}: {method} {path} answered non-object JSON")
        return doc


def connect(home: Home) -> ApiClient:
    """A client of the running daemon; ServiceError when none runs."""
    daemon = running_daemon(home)
    if daemon is None:
        raise ServiceError(
            f"control plane: no daemon runs for {home.root}; start it with `sprout daemon start`"
        )
    return ApiClient.for_daemon(home, daemon)


def ensure_daemon(home: Home, router_port: int | None = None, https_port: int | None = None) -> ApiClient:
    """A client of the daemon of `home`, starting the daemon (and through it the router) if needed."""
    return ApiClient.for_daemon(home, start_daemon(home, router_port=router_port, https_port=https_port))

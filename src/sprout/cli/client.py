"""The CLI's client of the control-plane API: finds (or starts) the daemon, sends the token, maps errors."""

from __future__ import annotations

from typing import Any

import httpx

from sprout import errors
from sprout.api.auth import read_token
from sprout.controlplane.lifecycle import DaemonInfo, running_daemon, start_daemon
from sprout.errors import AuthError, ServiceError, SproutError
from sprout.paths import Home

#: Long enough for `down` of a large fleet (each instance gets its stop grace in parallel).
TIMEOUT = 120.0
#: `apply` may run a version's release command (bootstrap with `install`, then migrations) first.
APPLY_TIMEOUT = 1800.0
_KINDS: dict[str, type[SproutError]] = {
    name: cls
    for name, cls in vars(errors).items()
    if isinstance(cls, type) and issubclass(cls, SproutError) and cls is not errors.ManifestError
}


class ApiClient:
    """Calls the daemon's API with the bearer token; raises the SproutError the daemon reported."""

    def __init__(self, base_url: str, token: str, timeout: float = TIMEOUT) -> None:
        self.base_url = base_url
        self._http = httpx.Client(
            base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=timeout, trust_env=False
        )

    @classmethod
    def for_daemon(cls, home: Home, daemon: DaemonInfo) -> ApiClient:
        """A client of a running daemon of `home`."""
        return cls(daemon.api_url, read_token(home.token_file))

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        """GET `path` with query parameters (None values left out)."""
        return self._call("GET", path, params={k: str(v) for k, v in params.items() if v is not None})

    def post(
        self, path: str, body: dict[str, Any] | None = None, timeout: float | None = None
    ) -> dict[str, Any]:
        """POST a JSON body (`timeout` for calls that run long work, such as a release phase)."""
        extra: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
        return self._call("POST", path, json=body or {}, **extra)

    def delete(self, path: str, **params: Any) -> dict[str, Any]:
        """DELETE `path`."""
        return self._call("DELETE", path, params={k: str(v) for k, v in params.items() if v is not None})

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ServiceError(
                f"control plane at {self.base_url}: {method} {path} failed ({exc}); "
                "check `sprout daemon status` and logs/daemon.log"
            ) from exc
        try:
            doc = response.json()
        except ValueError:
            doc = {"error": response.text[:200]}
        if response.status_code == 401:
            raise AuthError(f"control plane at {self.base_url}: {doc.get('error', 'unauthorized')}")
        if response.status_code >= 400:
            kind = _KINDS.get(str(doc.get("kind")), SproutError)
            raise kind(str(doc.get("error") or f"{method} {path}: HTTP {response.status_code}"))
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


def ensure_daemon(home: Home, router_port: int | None = None) -> ApiClient:
    """A client of the daemon of `home`, starting the daemon (and through it the router) if needed."""
    return ApiClient.for_daemon(home, start_daemon(home, router_port=router_port))

"""`RouterAdmin`: the control plane's synchronous client for the router's admin API.

`RouterControl` is what the control plane needs of any engine; `RouterAdmin` serves it for the embedded
router, `sprout.router.haproxy.admin.HaproxyAdmin` for HAProxy.
"""

from __future__ import annotations

import http.client
import json
import time
from abc import ABC, abstractmethod
from typing import Any
from urllib.parse import urlsplit

from sprout.errors import AuthError, NotFoundError, ServiceError, UserError


class RouterControl(ABC):
    """The router operations the control plane uses, whatever engine serves the traffic."""

    base_url: str

    @abstractmethod
    def close(self) -> None:
        """Release the client's connections."""

    @abstractmethod
    def get_table(self) -> dict[str, Any]:
        """The routing table in force."""

    @abstractmethod
    def put_table(self, table: dict[str, Any]) -> dict[str, Any]:
        """Replace the table atomically, entry by entry; returns the table in force and, under `rejected`,
        the entries the router refused (`{"route": name, "error": why}`), whose previous entries it kept."""

    @abstractmethod
    def set_weights(self, route: str, weights: dict[str, int]) -> dict[str, Any]:
        """Set group weights of one route, e.g. {"blue": 0, "green": 100}."""

    @abstractmethod
    def drain(self, target_id: str, timeout: float | None = None) -> dict[str, Any]:
        """Take a target out of rotation; in-flight requests get up to `timeout` seconds."""

    @abstractmethod
    def target(self, target_id: str) -> dict[str, Any]:
        """One target: id, state, healthy, in_flight, zone, version, group, route."""

    def wait_drained(self, target_id: str, timeout: float) -> bool:
        """Poll until the target's state is `drained`; False if `timeout` seconds pass first."""
        deadline = time.monotonic() + timeout
        while True:
            if self.target(target_id)["state"] == "drained":
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)

    @abstractmethod
    def health(self) -> dict[str, Any]:
        """Health per route, group and target."""

    @abstractmethod
    def metrics(self) -> dict[str, Any]:
        """The `/metrics.json` snapshot."""

    @abstractmethod
    def metrics_text(self) -> str:
        """The Prometheus text exposition."""

    @abstractmethod
    def ping(self) -> bool:
        """True when the router's control interface answers."""


class RouterAdmin(RouterControl):
    """Calls the admin API at `base_url` with the bearer `token`; errors become Sprout errors."""

    def __init__(self, base_url: str, token: str, timeout: float = 10.0) -> None:
        # The standard library's client, as the CLI's: JSON over loopback needs no more, and the daemon
        # starts faster without httpx (which imports its own command line, rich, click and pygments).
        parts = urlsplit(base_url)
        if parts.scheme != "http" or parts.hostname is None:
            raise ServiceError(f"router admin at {base_url}: not an http:// URL")
        self.base_url = base_url.rstrip("/")
        self._host, self._port = parts.hostname, parts.port or 80
        self._headers = {"Authorization": f"Bearer {token}"}
        self._timeout = timeout

    def close(self) -> None:
        """Nothing to release: each call has a connection of its own (calls come from several threads)."""

    def __enter__(self) -> RouterAdmin:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, method: str, path: str, body: Any = None) -> tuple[int, str, bytes]:
        """Status, content type and body of one call; OSError or HTTPException when the router is not there."""
        headers = dict(self._headers)
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        conn = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
        try:
            conn.request(method, path, body=payload, headers=headers)
            response = conn.getresponse()
            return response.status, response.getheader("Content-Type", ""), response.read()
        finally:
            conn.close()

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        try:
            status, content_type, data = self._request(method, path, body)
        except (OSError, http.client.HTTPException) as exc:
            raise ServiceError(
                f"router admin at {self.base_url}: cannot reach it ({exc}); is `sprout router` running?"
            ) from exc
        text = data.decode("utf-8", "replace")
        if status == 401:
            raise AuthError(f"router admin at {self.base_url}: token rejected; use the router's --token-file")
        if status == 404:
            raise NotFoundError(_error(text))
        if status == 400:
            raise UserError(_error(text))
        if status >= 300:
            raise ServiceError(f"router admin at {self.base_url}: {method} {path} failed: {_error(text)}")
        if content_type.startswith("application/json"):
            return json.loads(text)
        return text

    def get_table(self) -> dict[str, Any]:
        """The routing table in force."""
        return dict(self._call("GET", "/table"))

    def put_table(self, table: dict[str, Any]) -> dict[str, Any]:
        """Replace the table atomically, entry by entry; returns the table in force and, under `rejected`,
        the entries the router refused (`{"route": name, "error": why}`), whose previous entries it kept."""
        return dict(self._call("PUT", "/table", table))

    def set_weights(self, route: str, weights: dict[str, int]) -> dict[str, Any]:
        """Set group weights of one route, e.g. {"blue": 0, "green": 100}."""
        return dict(self._call("PUT", f"/routes/{route}/weights", weights))

    def drain(self, target_id: str, timeout: float | None = None) -> dict[str, Any]:
        """Take a target out of rotation; in-flight requests get up to `timeout` seconds."""
        body = {} if timeout is None else {"timeout": timeout}
        return dict(self._call("POST", f"/targets/{target_id}/drain", body))

    def target(self, target_id: str) -> dict[str, Any]:
        """One target: id, state, healthy, in_flight, zone, version, group, route."""
        return dict(self._call("GET", f"/targets/{target_id}"))

    def health(self) -> dict[str, Any]:
        """Health per route, group and target."""
        return dict(self._call("GET", "/health"))

    def metrics(self) -> dict[str, Any]:
        """The `/metrics.json` snapshot."""
        return dict(self._call("GET", "/metrics.json"))

    def metrics_text(self) -> str:
        """The Prometheus text exposition."""
        return str(self._call("GET", "/metrics"))

    def ping(self) -> bool:
        """True when the admin listener answers its liveness check."""
        try:
            return self._request("GET", "/healthz")[0] == 200
        except (OSError, http.client.HTTPException):
            return False


def _error(text: str) -> str:
    """The router's `error` field of a JSON answer, else the answer's text."""
    try:
        body = json.loads(text)
    except ValueError:
        return text
    return str(body.get("error", text)) if isinstance(body, dict) else text

"""`RouterAdmin`: the control plane's synchronous client for the router's admin API.

`RouterControl` is what the control plane needs of any engine; `RouterAdmin` serves it for the embedded
router, `sprout.router.haproxy.admin.HaproxyAdmin` for HAProxy.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from typing import Any

import httpx

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
        self.base_url = base_url.rstrip("/")
        self._client = httpx.Client(
            base_url=self.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=timeout
        )

    def close(self) -> None:
        """Close the underlying HTTP connections."""
        self._client.close()

    def __enter__(self) -> RouterAdmin:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, json: Any = None) -> Any:
        try:
            response = self._client.request(method, path, json=json)
        except httpx.TransportError as exc:
            raise ServiceError(
                f"router admin at {self.base_url}: cannot reach it ({exc}); is `sprout router` running?"
            ) from exc
        if response.status_code == 401:
            raise AuthError(f"router admin at {self.base_url}: token rejected; use the router's --token-file")
        if response.status_code == 404:
            raise NotFoundError(_error(response))
        if response.status_code == 400:
            raise UserError(_error(response))
        if response.status_code >= 300:
            raise ServiceError(f"router admin at {self.base_url}: {method} {path} failed: {_error(response)}")
        if response.headers.get("content-type", "").startswith("application/json"):
            return response.json()
        return response.text

    def get_table(self) -> dict[str, Any]:
        """The routing table in force."""
        return dict(self._call("GET", "/table"))

    def put_table(self, table: dict[str, Any]) -> dict[str, Any]:
        """Replace the table atomically, entry by entry; returns the table in force and, under `rejected`,
        the entries the router refused (`{"route": name, "error": why}`), whose previous entries it kept."""
        return dict(self._call("PUT", "/table", json=table))

    def set_weights(self, route: str, weights: dict[str, int]) -> dict[str, Any]:
        """Set group weights of one route, e.g. {"blue": 0, "green": 100}."""
        return dict(self._call("PUT", f"/routes/{route}/weights", json=weights))

    def drain(self, target_id: str, timeout: float | None = None) -> dict[str, Any]:
        """Take a target out of rotation; in-flight requests get up to `timeout` seconds."""
        body = {} if timeout is None else {"timeout": timeout}
        return dict(self._call("POST", f"/targets/{target_id}/drain", json=body))

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
            return self._client.get("/healthz").status_code == 200
        except httpx.TransportError:
            return False


def _error(response: httpx.Response) -> str:
    try:
        return str(response.json().get("error", response.text))
    except ValueError:
        return response.text

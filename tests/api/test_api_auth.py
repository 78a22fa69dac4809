"""The API token file and the bearer middleware: every route, known or not, answers 401 without it."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from sprout.api.app import create_app
from sprout.api.auth import ensure_token, read_token
from sprout.errors import AuthError, ConflictError, NotFoundError, ServiceError, UserError

TOKEN = "t0ken-for-tests"


class FakeController:
    """Answers every API call with a fixed document, or raises the error it was given."""

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.calls: list[tuple[str, Any]] = []

    def _answer(self, name: str, arg: Any) -> dict[str, Any]:
        self.calls.append((name, arg))
        if self.error is not None:
            raise self.error
        return {"called": name}

    def status(self) -> dict[str, Any]:
        return self._answer("status", None)

    def health(self) -> dict[str, Any]:
        return self._answer("health", None)

    def apply(self, request: dict[str, Any]) -> dict[str, Any]:
        return self._answer("apply", request)

    def down(self, app: str, env: str, user: str) -> dict[str, Any]:
        return self._answer("down", (app, env, user))

    def logs(self, query: dict[str, str]) -> dict[str, Any]:
        return self._answer("logs", query)

    def events(self, query: dict[str, str]) -> dict[str, Any]:
        return self._answer("events", query)

    def shutdown(self, stop_router: bool) -> dict[str, Any]:
        return self._answer("shutdown", stop_router)

    def deploy(self, request: dict[str, Any]) -> dict[str, Any]:
        return self._answer("deploy", request)

    def rollback(self, request: dict[str, Any]) -> dict[str, Any]:
        return self._answer("rollback", request)

    def swap(self, request: dict[str, Any]) -> dict[str, Any]:
        return self._answer("swap", request)

    def deployments(self, query: dict[str, str]) -> dict[str, Any]:
        return self._answer("deployments", query)


REQUESTS = [
    ("GET", "/v1/healthz"),
    ("GET", "/v1/status"),
    ("GET", "/v1/health"),
    ("POST", "/v1/apply"),
    ("DELETE", "/v1/environments/hello/production"),
    ("GET", "/v1/logs"),
    ("GET", "/v1/events"),
    ("POST", "/v1/shutdown"),
    ("POST", "/v1/deploy"),
    ("POST", "/v1/rollback"),
    ("POST", "/v1/swap"),
    ("GET", "/v1/deployments"),
    ("GET", "/"),
    ("GET", "/no/such/route"),
    ("OPTIONS", "/v1/status"),
    ("OPTIONS", "*"),
    ("HEAD", "/v1/status"),
    ("PUT", "/v1/apply"),
    ("PATCH", "/v1/environments/x/y"),
]


@pytest.fixture
def client() -> TestClient:
    return TestClient(create_app(FakeController(), FakeController(), TOKEN), raise_server_exceptions=False)


@pytest.mark.parametrize(("method", "path"), REQUESTS)
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": TOKEN},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": f"bearer  {TOKEN}"},
    ],
    ids=["none", "wrong", "no-scheme", "basic", "longer", "odd-spacing"],
)
def test_every_route_without_the_token_is_401(
    client: TestClient, method: str, path: str, headers: dict[str, str]
) -> None:
    response = client.request(method, path, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="sprout"'
    if method != "HEAD":
        assert "called" not in response.text


def test_the_token_opens_every_route() -> None:
    controller = FakeController()
    client = TestClient(create_app(controller, controller, TOKEN))
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert client.get("/v1/healthz", headers=auth).json() == {"ok": True}
    assert client.get("/v1/status", headers=auth).json() == {"called": "status"}
    assert client.get("/v1/health", headers=auth).json() == {"called": "health"}
    assert client.post("/v1/apply", headers=auth, json={"app_dir": "/x", "env": "e"}).status_code == 200
    assert client.delete("/v1/environments/a/b?user=ann", headers=auth).status_code == 200
    assert client.get("/v1/logs?grep=x", headers=auth).status_code == 200
    assert client.get("/v1/events", headers=auth).status_code == 200
    assert client.post("/v1/shutdown", headers=auth, json={"router": True}).status_code == 200
    assert client.post("/v1/deploy", headers=auth, json={"app": "a", "version": "v2"}).status_code == 200
    assert client.post("/v1/rollback", headers=auth, json={"app": "a"}).status_code == 200
    assert client.post("/v1/swap", headers=auth, json={"app": "a"}).status_code == 200
    assert client.get("/v1/deployments?app=a", headers=auth).status_code == 200
    assert [name for name, _ in controller.calls] == [
        "status",
        "health",
        "apply",
        "down",
        "logs",
        "events",
        "shutdown",
        "deploy",
        "rollback",
        "swap",
        "deployments",
    ]
    assert controller.calls[3] == ("down", ("a", "b", "ann"))
    assert controller.calls[4] == ("logs", {"grep": "x"})
    assert controller.calls[6] == ("shutdown", True)
    assert client.get("/nope", headers=auth).status_code == 404


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (NotFoundError("hello/production: no such environment"), 404),
        (UserError("bad input"), 400),
        (ConflictError("locked"), 409),
        (ServiceError("router down"), 503),
    ],
)
def test_errors_keep_their_kind_and_message(error: Exception, status: int) -> None:
    client = TestClient(
        create_app(FakeController(error), FakeController(error), TOKEN), raise_server_exceptions=False
    )
    response = client.get("/v1/status", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == status
    assert response.json()["error"] == str(error)
    assert response.json()["kind"] == type(error).__name__


def test_apply_needs_an_app_dir_and_json() -> None:
    client = TestClient(create_app(FakeController(), FakeController(), TOKEN))
    auth = {"Authorization": f"Bearer {TOKEN}"}
    response = client.post("/v1/apply", headers=auth, json={"env": "production"})
    assert response.status_code == 400
    assert response.json()["error"] == (
        "apply: the request needs `app_dir` (an absolute path to the app folder)"
    )
    response = client.post("/v1/apply", headers=auth, content=b"{not json")
    assert response.status_code == 400
    assert response.json()["error"].startswith("/v1/apply: request body is not JSON")


def test_token_file_is_created_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "run" / "api.token"
    token = ensure_token(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(token) >= 43  # 32 random bytes, urlsafe base64
    assert ensure_token(path) == token
    assert read_token(path) == token


def test_a_token_file_others_can_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "api.token"
    ensure_token(path)
    path.chmod(0o644)
    with pytest.raises(AuthError, match=r"token file has mode 644; run `chmod 600 "):
        read_token(path)


def test_a_missing_token_says_how_to_get_one(tmp_path: Path) -> None:
    with pytest.raises(AuthError, match="no API token yet"):
        read_token(tmp_path / "api.token")

"""The ASGI session middleware: a signed id in the cookie, the data server-side, saved only when changed."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from sprout.runtime.sessions import SessionMiddleware, SQLiteStore, store_from_url


async def count(request: Request) -> JSONResponse:
    request.session["n"] = request.session.get("n", 0) + 1
    return JSONResponse(request.session)


async def peek(request: Request) -> JSONResponse:
    return JSONResponse(request.session)


async def logout(request: Request) -> JSONResponse:
    request.session.clear()
    return JSONResponse({})


def _app(store: SQLiteStore) -> SessionMiddleware:
    routes = [Route("/count", count), Route("/peek", peek), Route("/logout", logout)]
    return SessionMiddleware(Starlette(routes=routes), store, secret="test-secret", cookie_name="sid")


@pytest.fixture
def store(tmp_path: Path) -> SQLiteStore:
    return SQLiteStore(str(tmp_path / "sessions.sqlite3"))


def test_session_follows_the_browser_across_two_app_processes(store: SQLiteStore) -> None:
    one, two = TestClient(_app(store)), TestClient(_app(store))
    assert one.get("/count").json() == {"n": 1}
    cookie = one.cookies["sid"]
    sid, _, mac = cookie.partition(".")
    assert store.get(sid) == {"n": 1} and mac
    two.cookies.set("sid", cookie)
    assert two.get("/count").json() == {"n": 2}
    assert one.get("/peek").json() == {"n": 2}


def test_reading_does_not_write_or_set_a_cookie(store: SQLiteStore) -> None:
    client = TestClient(_app(store))
    response = client.get("/peek")
    assert "set-cookie" not in response.headers
    client.get("/count")
    assert "set-cookie" not in client.get("/peek").headers


def test_a_tampered_or_unknown_id_starts_a_new_session(store: SQLiteStore) -> None:
    client = TestClient(_app(store))
    client.get("/count")
    sid = client.cookies["sid"].partition(".")[0]
    forged = TestClient(_app(store))
    headers = {"cookie": f"sid={sid}.forged"}
    assert forged.get("/peek", headers=headers).json() == {}
    response = forged.get("/count", headers=headers)
    assert response.json() == {"n": 1}
    assert response.cookies["sid"].partition(".")[0] != sid


def test_clearing_the_session_deletes_it_and_the_cookie(store: SQLiteStore) -> None:
    client = TestClient(_app(store))
    client.get("/count")
    sid = client.cookies["sid"].partition(".")[0]
    response = client.get("/logout")
    assert "Max-Age=0" in response.headers["set-cookie"]
    assert store.get(sid) is None


def test_cookie_is_http_only_and_same_site(store: SQLiteStore) -> None:
    header = TestClient(_app(store)).get("/count").headers["set-cookie"]
    assert "HttpOnly" in header and "SameSite=lax" in header and "Path=/" in header


def test_unreachable_store_answers_503_not_500() -> None:
    routes = [Route("/count", count)]
    app = SessionMiddleware(
        Starlette(routes=routes), store_from_url("memcached://a=127.0.0.1:9"), secret="s", cookie_name="sid"
    )
    client = TestClient(app)
    client.cookies.set("sid", app.sign("someid"))
    response = client.get("/count")
    assert response.status_code == 503
    assert "session store cannot be reached" in response.text

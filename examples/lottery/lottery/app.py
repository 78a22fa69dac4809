"""The lottery web app: enter with an email, watch the counter, an admin-only draw, results and a verifier.

`app` is what `uvicorn lottery.app:app` serves; `create_app(settings)` builds one for tests.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio.to_thread
from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lottery import entries, verify
from lottery._sessions import SessionMiddleware, SessionStoreError, store_from_url
from lottery.config import Settings
from lottery.db import POOL_SIZE, engine_from_url

HERE = Path(__file__).parent
log = logging.getLogger("lottery")


class CachedStaticFiles(StaticFiles):
    """Static files with a public Cache-Control, so the router's edge cache and browsers can keep them."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        """Serve the file with the cache header."""
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = "public, max-age=86400"
        return response


class InstanceHeaders:
    """Stamp every response with the version and instance that served it (read by release benchmarks)."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.headers = {"X-Sprout-Version": settings.version, "X-Sprout-Instance": settings.instance}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def stamped(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.headers.items():
                    headers[name] = value
            await send(message)

        await self.app(scope, receive, stamped if scope["type"] == "http" else send)


@asynccontextmanager
async def one_thread_per_connection(app: Starlette) -> AsyncIterator[None]:
    """Run at most as many blocking database calls at once as the pool has connections."""
    anyio.to_thread.current_default_thread_limiter().total_tokens = POOL_SIZE
    yield


def wants_json(request: Request) -> bool:
    """True when the client asked for JSON rather than a page."""
    return "application/json" in request.headers.get("accept", "")


def create_app(settings: Settings | None = None) -> ASGIApp:
    """Build the lottery for one instance."""
    settings = settings or Settings.from_env()
    engine = engine_from_url(settings.database_url)
    store = store_from_url(settings.session_store_url, zone=settings.zone)
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.globals["instance"] = settings

    def page(request: Request, template: str, code: int = 200, **context: Any) -> Response:
        return templates.TemplateResponse(request, template, context, status_code=code)

    def answer(request: Request, template: str, data: dict[str, Any], code: int = 200) -> Response:
        if wants_json(request):
            return JSONResponse({k: v for k, v in data.items() if k != "round"}, status_code=code)
        return page(request, template, code, **data)

    async def home(request: Request) -> Response:
        info = await run_in_threadpool(entries.round_info, engine)
        total = await run_in_threadpool(entries.count, engine)
        data = {"entrants": total, "status": info["status"], "commitment": info["commitment"]}
        return answer(request, "index.html", data | {"ticket": request.session.get("ticket")})

    async def enter(request: Request) -> Response:
        form = await request.form()
        try:
            entry = await run_in_threadpool(entries.enter, engine, str(form.get("email", "")))
        except entries.InvalidEmail as exc:
            return answer(request, "message.html", {"error": "invalid_email", "message": str(exc)}, 400)
        except entries.EntriesClosed:
            message = "Entries are closed. See the results page."
            return answer(request, "message.html", {"error": "closed", "message": message}, 409)
        request.session["ticket"] = entry.ticket
        return answer(
            request, "ticket.html", {"ticket": entry.ticket, "new": entry.new}, 201 if entry.new else 200
        )

    async def results(request: Request) -> Response:
        info = await run_in_threadpool(entries.round_info, engine)
        return answer(request, "results.html", _public(info) | {"round": info})

    async def tickets_txt(request: Request) -> Response:
        info = await run_in_threadpool(entries.round_info, engine)
        if info["status"] == "open":
            return PlainTextResponse("The ticket list is published when entries close.\n", status_code=409)
        listed = await run_in_threadpool(entries.tickets, engine)
        return PlainTextResponse("".join(f"{t}\n" for t in listed))

    async def check(request: Request) -> Response:
        info = await run_in_threadpool(entries.round_info, engine)
        if info["status"] != "drawn":
            return answer(request, "message.html", {"error": "not_drawn", "message": "No draw yet."}, 409)
        listed = await run_in_threadpool(entries.tickets, engine)
        checks = {
            "commitment_matches": verify.commitment(info["seed"]) == info["commitment"],
            "tickets_match": verify.tickets_digest(listed) == info["tickets_digest"],
            "winners_match": verify.draw_winners(info["seed"], listed, info["prizes"]) == info["winners"],
        }
        return answer(request, "verify.html", _public(info) | {"checks": checks, "round": info})

    async def verifier_source(request: Request) -> Response:
        return PlainTextResponse((HERE / "verify.py").read_text(encoding="utf-8"))

    async def admin_page(request: Request) -> Response:
        info = await run_in_threadpool(entries.round_info, engine)
        return page(request, "admin.html", round=info, enabled=settings.admin_token is not None)

    async def admin_action(request: Request) -> Response:
        form = await request.form()
        _authorise(request, str(form.get("token", "")))
        actions = {"close": entries.close, "draw": entries.draw}
        if request.path_params["action"] not in actions:
            raise HTTPException(404, "No such admin action.")
        action = actions[request.path_params["action"]]
        try:
            info = await run_in_threadpool(action, engine)
        except entries.WrongState as exc:
            return answer(request, "message.html", {"error": "wrong_state", "message": str(exc)}, 409)
        return answer(request, "results.html", _public(info) | {"round": info})

    def _authorise(request: Request, form_token: str) -> None:
        if settings.admin_token is None:
            raise HTTPException(403, "The draw is disabled: set LOTTERY_ADMIN_TOKEN to enable /admin.")
        bearer = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        given = bearer or form_token
        if not hmac.compare_digest(given.encode(), settings.admin_token.encode()):
            raise HTTPException(403, "Wrong admin token.")

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok", "instance": settings.instance, "version": settings.version})

    async def readyz(request: Request) -> Response:
        checks: dict[str, str] = {}
        for name, probe in (("database", lambda: entries.ping(engine)), ("sessions", store.ping)):
            try:
                await run_in_threadpool(probe)
                checks[name] = "ok"
            except (SQLAlchemyError, SessionStoreError) as exc:
                log.warning("readyz: %s is not reachable: %s", name, exc)
                checks[name] = "unreachable"
        ready = all(v == "ok" for v in checks.values())
        return JSONResponse({"ready": ready, **checks}, status_code=200 if ready else 503)

    async def http_error(request: Request, exc: Exception) -> Response:
        detail = str(getattr(exc, "detail", "Not found"))
        status = int(getattr(exc, "status_code", 404))
        if wants_json(request) or "session" not in request.scope:
            return JSONResponse({"error": detail}, status_code=status)
        return page(request, "message.html", status, message=detail)

    routes = [
        Route("/", home),
        Route("/enter", enter, methods=["POST"]),
        Route("/results", results),
        Route("/tickets.txt", tickets_txt),
        Route("/verify", check),
        Route("/verify.py", verifier_source),
        Route("/admin", admin_page),
        Route("/admin/{action:str}", admin_action, methods=["POST"]),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Mount("/static", CachedStaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    lottery_app = Starlette(
        routes=routes, lifespan=one_thread_per_connection, exception_handlers={HTTPException: http_error}
    )
    return InstanceHeaders(SessionMiddleware(lottery_app, store, cookie_name="lottery_session"), settings)


def _public(info: dict[str, Any]) -> dict[str, Any]:
    keys = ("status", "commitment", "seed", "prizes", "ticket_count", "tickets_digest", "winners")
    return {k: info[k] for k in keys}


app = create_app()

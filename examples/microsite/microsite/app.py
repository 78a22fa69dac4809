"""The microsite web app: catalogue, product pages, a server-side cart, checkout and order pages.

`app` is what `uvicorn microsite.app:app` serves; `create_app(settings)` builds one for tests.
"""

from __future__ import annotations

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
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from microsite import shop
from microsite._sessions import SessionMiddleware, SessionStoreError, store_from_url
from microsite.config import Settings
from microsite.db import POOL_SIZE, engine_from_url

HERE = Path(__file__).parent
MAX_QUANTITY = 10
log = logging.getLogger("microsite")


class CachedStaticFiles(StaticFiles):
    """Static files with a public Cache-Control, so the router's edge cache and browsers can keep them."""

    def __init__(self, max_age: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cache_control = f"public, max-age={max_age}"

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        """Serve the file with the cache header."""
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = self.cache_control
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
    """Build the shop for one instance."""
    settings = settings or Settings.from_env()
    engine = engine_from_url(settings.database_url)
    store = store_from_url(settings.session_store_url, zone=settings.zone)
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.globals["instance"] = settings
    templates.env.filters["money"] = lambda cents: f"€{int(cents) / 100:,.2f}"

    def page(request: Request, template: str, status: int = 200, **context: Any) -> Response:
        context["cart_count"] = sum(request.session.get("cart", {}).values())
        return templates.TemplateResponse(request, template, context, status_code=status)

    async def catalogue(request: Request) -> Response:
        items = await run_in_threadpool(shop.list_products, engine)
        if wants_json(request):
            return JSONResponse({"products": items})
        return page(request, "index.html", products=items)

    async def product(request: Request) -> Response:
        item = await run_in_threadpool(shop.get_product, engine, request.path_params["slug"])
        if item is None:
            raise HTTPException(404, "No such product")
        return page(request, "product.html", product=item)

    async def cart(request: Request) -> Response:
        lines = await run_in_threadpool(shop.cart_lines, engine, request.session.get("cart", {}))
        total = sum(line.total_cents for line in lines)
        if wants_json(request):
            return JSONResponse(
                {"lines": {str(li.product["id"]): li.quantity for li in lines}, "total": total}
            )
        return page(request, "cart.html", lines=lines, total=total)

    async def add_to_cart(request: Request) -> Response:
        form = await request.form()
        try:
            pid, quantity = int(str(form["product_id"])), int(str(form.get("quantity", "1")))
        except (KeyError, ValueError):
            raise HTTPException(400, "product_id and quantity must be numbers") from None
        cart = dict(request.session.get("cart", {}))
        cart[str(pid)] = max(0, min(MAX_QUANTITY, cart.get(str(pid), 0) + quantity))
        request.session["cart"] = {k: v for k, v in cart.items() if v > 0}
        if wants_json(request):
            return JSONResponse({"cart": request.session["cart"]})
        return RedirectResponse("/cart", status_code=303)

    async def remove_from_cart(request: Request) -> Response:
        form = await request.form()
        cart = dict(request.session.get("cart", {}))
        cart.pop(str(form.get("product_id", "")), None)
        request.session["cart"] = cart
        return RedirectResponse("/cart", status_code=303)

    async def checkout(request: Request) -> Response:
        cart = request.session.get("cart", {})
        if not cart:
            if wants_json(request):
                return JSONResponse({"error": "empty_cart"}, status_code=400)
            return RedirectResponse("/cart", status_code=303)
        try:
            code = await run_in_threadpool(shop.place_order, engine, cart, settings.instance)
        except shop.SoldOut as sold_out:
            if wants_json(request):
                return JSONResponse({"error": "sold_out", "product": sold_out.name}, status_code=409)
            return page(request, "sold_out.html", status=409, name=sold_out.name, wanted=sold_out.wanted)
        request.session["cart"] = {}
        request.session.setdefault("orders", []).append(code)
        if wants_json(request):
            return JSONResponse({"order": code}, status_code=201)
        return RedirectResponse(f"/orders/{code}", status_code=303)

    async def order(request: Request) -> Response:
        found = await run_in_threadpool(shop.get_order, engine, request.path_params["code"])
        if found is None:
            raise HTTPException(404, "No such order")
        return page(request, "order.html", order=found)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok", "instance": settings.instance, "version": settings.version})

    async def readyz(request: Request) -> Response:
        checks: dict[str, str] = {}
        for name, probe in (("database", lambda: shop.ping(engine)), ("sessions", store.ping)):
            try:
                await run_in_threadpool(probe)
                checks[name] = "ok"
            except (SQLAlchemyError, SessionStoreError) as exc:
                log.warning("readyz: %s is not reachable: %s", name, exc)
                checks[name] = "unreachable"
        ready = all(v == "ok" for v in checks.values())
        return JSONResponse({"ready": ready, **checks}, status_code=200 if ready else 503)

    async def not_found(request: Request, exc: Exception) -> Response:
        detail = getattr(exc, "detail", "Not found")
        status = getattr(exc, "status_code", 404)
        if wants_json(request):
            return JSONResponse({"error": detail}, status_code=status)
        if "session" not in request.scope:
            return PlainTextResponse(detail, status_code=status)
        return page(request, "error.html", status=status, detail=detail)

    routes = [
        Route("/", catalogue),
        Route("/products/{slug}", product),
        Route("/cart", cart),
        Route("/cart/add", add_to_cart, methods=["POST"]),
        Route("/cart/remove", remove_from_cart, methods=["POST"]),
        Route("/checkout", checkout, methods=["POST"]),
        Route("/orders/{code}", order),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Mount(
            "/static",
            CachedStaticFiles(settings.static_max_age, directory=str(HERE / "static")),
            name="static",
        ),
    ]
    shop_app = Starlette(
        routes=routes, lifespan=one_thread_per_connection, exception_handlers={HTTPException: not_found}
    )
    return InstanceHeaders(SessionMiddleware(shop_app, store, cookie_name="microsite_session"), settings)


app = create_app()

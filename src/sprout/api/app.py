"""The control-plane API: a Starlette app over the controller, behind the bearer-token middleware.

Routes (all JSON, all under the token):
  GET    /v1/healthz                     the daemon answers
  GET    /v1/status                      environments, their URLs and instances; the router; the daemon
  GET    /v1/health                      the same with the router's live counters per instance, and `time`
  POST   /v1/apply                       {app_dir, env, port?, user?, secrets?} → the plan's text, or no changes
  DELETE /v1/environments/{app}/{env}    stop an environment's instances and resources, remove its route
  GET    /v1/logs                        query the central log store
  GET    /v1/events                      the control plane's decisions
  POST   /v1/shutdown                    {router?: bool} stop the daemon (and the router)
  POST   /v1/deploy                      {app, env, version, strategy?, user?, skip_tests?} test gate, then start a release
  POST   /v1/rollback                    {app, env, to?, user?} back to the warm fleet or an earlier version
  POST   /v1/swap                        {app, env, user?} blue/green: traffic to the warm fleet
  GET    /v1/deployments                 recorded releases
  POST   /v1/dashboard/codes             a one-time sign-in code for the dashboard (`sprout dashboard`)
  POST   /v1/default-route               {app, env, user?} the environment the router serves for unknown hosts
  GET    /metrics                        Prometheus text: loop health, fleet sizes, release outcomes

Dashboard (HTML, read-only; see sprout.dashboard.sessions for why it signs in differently):
  GET    /dashboard/login?code=…         trade a code for a session cookie, then to /dashboard
  GET    /dashboard                      the page, for a browser with a live session
  GET    /dashboard/logs?instance=…      one instance's last log lines, read-only, same session
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any, Protocol

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from sprout.api.auth import BearerAuth
from sprout.dashboard.sessions import COOKIE, LOGS, PAGE, SESSION_SECONDS, DashboardSessions
from sprout.diskfull import is_disk_full
from sprout.errors import ConflictError, NotFoundError, ServiceError, SproutError, TestsFailed, UserError
from sprout.report import health_report

log = logging.getLogger(__name__)


class Controller(Protocol):
    """What the API needs from the control plane (the daemon's `Controller`)."""

    def status(self) -> dict[str, Any]:
        """The whole observable state."""
        ...

    def health(self) -> dict[str, Any]:
        """The status with the router's live counters per instance."""
        ...

    def bill(self) -> dict[str, Any]:
        """This month's bill so far."""
        ...

    def apply(self, request: dict[str, Any]) -> dict[str, Any]:
        """Apply an app folder's manifest to an environment."""
        ...

    def down(self, app: str, env: str, user: str) -> dict[str, Any]:
        """Tear an environment down."""
        ...

    def logs(self, query: dict[str, str]) -> dict[str, Any]:
        """Log lines matching a query."""
        ...

    def events(self, query: dict[str, str]) -> dict[str, Any]:
        """Recorded events matching a query."""
        ...

    def shutdown(self, stop_router: bool) -> dict[str, Any]:
        """Stop the daemon (and optionally the router)."""
        ...

    def set_default_route(self, app: str, env: str, user: str) -> dict[str, Any]:
        """Make the router's default route serve an environment."""
        ...


class Releases(Protocol):
    """What the API needs from the release engine."""

    def deploy(self, request: dict[str, Any]) -> dict[str, Any]:
        """Start a release."""
        ...

    def rollback(self, request: dict[str, Any]) -> dict[str, Any]:
        """Roll an environment back."""
        ...

    def swap(self, request: dict[str, Any]) -> dict[str, Any]:
        """Swap blue/green."""
        ...

    def deployments(self, query: dict[str, str]) -> dict[str, Any]:
        """List releases."""
        ...

    def rollbacks(self, query: dict[str, str]) -> dict[str, Any]:
        """List instant rollbacks."""
        ...


def error_status(exc: SproutError) -> int:
    """The HTTP status of an error kind."""
    if isinstance(exc, TestsFailed):
        return 422
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, UserError):
        return 400
    if isinstance(exc, ConflictError):
        return 409
    if isinstance(exc, ServiceError):
        return 503
    return 500


def create_app(
    controller: Controller, releases: Releases, token: str, metrics: CollectorRegistry | None = None
) -> Starlette:
    """The API application for one controller and release engine, guarded by `token`; `/metrics` serves
    the `metrics` registry when given."""
    sessions = DashboardSessions()
    # The dashboard's previous reading: its live figures cover the time since (about one reload).
    readings: dict[str, dict[str, Any]] = {}

    async def healthz(request: Request) -> Response:
        return JSONResponse({"ok": True})

    async def status(request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(controller.status))

    async def health(request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(controller.health))

    async def apply(request: Request) -> Response:
        body = await _json_body(request)
        if not isinstance(body.get("app_dir"), str) or not body["app_dir"]:
            raise UserError("apply: the request needs `app_dir` (an absolute path to the app folder)")
        return JSONResponse(await run_in_threadpool(controller.apply, body))

    async def down(request: Request) -> Response:
        app_name, env = request.path_params["app"], request.path_params["env"]
        user = request.query_params.get("user", "unknown")
        return JSONResponse(await run_in_threadpool(controller.down, app_name, env, user))

    async def logs(request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(controller.logs, dict(request.query_params)))

    async def events(request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(controller.events, dict(request.query_params)))

    async def shutdown(request: Request) -> Response:
        body = await _json_body(request)
        return JSONResponse(await run_in_threadpool(controller.shutdown, bool(body.get("router"))))

    async def deploy(request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(releases.deploy, await _json_body(request)))

    async def rollback(request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(releases.rollback, await _json_body(request)))

    async def swap(request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(releases.swap, await _json_body(request)))

    async def deployments(request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(releases.deployments, dict(request.query_params)))

    async def prometheus(request: Request) -> Response:
        assert metrics is not None
        body = await run_in_threadpool(generate_latest, metrics)
        return Response(body, headers={"content-type": CONTENT_TYPE_LATEST})

    async def default_route(request: Request) -> Response:
        body = await _json_body(request)
        if not isinstance(body.get("app"), str) or not isinstance(body.get("env"), str):
            raise UserError("default-route: the request needs `app` and `env` (strings)")
        user = str(body.get("user") or "unknown")
        return JSONResponse(
            await run_in_threadpool(controller.set_default_route, body["app"], body["env"], user)
        )

    async def dashboard_code(request: Request) -> Response:
        return JSONResponse({"code": sessions.new_code(), "path": f"{PAGE}/login"})

    async def dashboard_login(request: Request) -> Response:
        session = sessions.redeem(request.query_params.get("code", ""))
        if session is None:
            return HTMLResponse(
                "<!doctype html><title>Sprout</title><p>This sign-in link has expired or was used already: "
                "run <code>sprout dashboard</code> again.</p>",
                status_code=401,
                headers=_dashboard_headers(),
            )
        response = RedirectResponse(PAGE, status_code=303, headers=_dashboard_headers())
        response.set_cookie(
            COOKIE, session, max_age=int(SESSION_SECONDS), path=PAGE, httponly=True, samesite="strict"
        )
        return response

    async def dashboard(request: Request) -> Response:
        return HTMLResponse(await run_in_threadpool(_dashboard_page), headers=_dashboard_headers())

    async def dashboard_logs(request: Request) -> Response:
        instance = request.query_params.get("instance", "")
        return HTMLResponse(await run_in_threadpool(_log_page, instance), headers=_dashboard_headers())

    def _log_page(instance: str) -> str:
        from sprout.dashboard.page import LOG_LINES, render_log

        lines = controller.logs({"instance": instance, "limit": str(LOG_LINES)})["lines"] if instance else []
        return render_log(instance, lines)

    def _dashboard_headers() -> dict[str, str]:
        from sprout.dashboard.page import SECURITY_HEADERS

        return SECURITY_HEADERS

    def _dashboard_page() -> str:
        from sprout.dashboard.page import REFRESH, render

        now = controller.health()
        before = readings.get("last")
        if before is None or now["time"] - before["time"] > 6 * REFRESH:
            # No recent reading to measure against: take a second one a moment later.
            time.sleep(1.0)
            before, now = now, controller.health()
        readings["last"] = now
        report = health_report(before, now)
        deployments = releases.deployments({"limit": "10"})["deployments"]
        # Routine events fold into one row per run: read more than the rows shown.
        events = controller.events({"limit": "60"})["events"]
        rollbacks = releases.rollbacks({"limit": "10"})["rollbacks"]
        return render(report, now, deployments, events, controller.bill(), rollbacks)

    async def sprout_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SproutError)
        return JSONResponse(
            {"error": str(exc), "kind": type(exc).__name__, "exit_code": exc.exit_code},
            status_code=error_status(exc),
        )

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return JSONResponse({"error": f"{request.method} {request.url.path}: {exc.detail}"}, exc.status_code)

    async def unexpected(request: Request, exc: Exception) -> Response:
        if is_disk_full(exc):
            log.error("API %s %s failed: disk full (%s)", request.method, request.url.path, exc)
            message = f"{request.method} {request.url.path}: disk full ({exc}); free space under SPROUT_HOME and retry"
            return JSONResponse({"error": message, "kind": "ServiceError", "exit_code": 4}, 507)
        log.exception("API %s %s failed", request.method, request.url.path)
        return JSONResponse({"error": f"internal error: {type(exc).__name__}; see logs/daemon.log"}, 500)

    routes = [
        Route("/v1/healthz", healthz, methods=["GET"]),
        Route("/v1/status", status, methods=["GET"]),
        Route("/v1/health", health, methods=["GET"]),
        Route("/v1/apply", apply, methods=["POST"]),
        Route("/v1/environments/{app}/{env}", down, methods=["DELETE"]),
        Route("/v1/logs", logs, methods=["GET"]),
        Route("/v1/events", events, methods=["GET"]),
        Route("/v1/shutdown", shutdown, methods=["POST"]),
        Route("/v1/deploy", deploy, methods=["POST"]),
        Route("/v1/rollback", rollback, methods=["POST"]),
        Route("/v1/swap", swap, methods=["POST"]),
        Route("/v1/deployments", deployments, methods=["GET"]),
        Route("/v1/default-route", default_route, methods=["POST"]),
        Route("/v1/dashboard/codes", dashboard_code, methods=["POST"]),
        Route(f"{PAGE}/login", dashboard_login, methods=["GET"]),
        Route(PAGE, dashboard, methods=["GET"]),
        Route(LOGS, dashboard_logs, methods=["GET"]),
    ]
    if metrics is not None:
        routes.append(Route("/metrics", prometheus, methods=["GET"]))
    return Starlette(
        routes=routes,
        middleware=[Middleware(BearerAuth, token=token, lets_through=sessions.lets_through)],
        exception_handlers={SproutError: sprout_error, HTTPException: http_error, Exception: unexpected},
    )


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise UserError(f"{request.url.path}: request body is not JSON ({exc.msg})") from exc
    if not isinstance(body, dict):
        raise UserError(f"{request.url.path}: request body must be a JSON object")
    return body

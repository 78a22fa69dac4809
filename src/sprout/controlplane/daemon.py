"""The daemon process (`python -m sprout.controlplane --home DIR`): API + reconcile loop + log ingestion.

Start-up order: take `run/daemon.lock` (one daemon per home), make sure the API token exists, open the
stores, adopt or start the router, bind the API socket, record `run/daemon.json`, then run the reconcile
loop, the periodic jobs (releases, autoscaler, housekeeping), the log ingester and the API server until
SIGTERM/SIGINT or `POST /v1/shutdown`. Shutdown stops them in reverse order and leaves the router and
the instances running: traffic never depends on the daemon being up.
"""

from __future__ import annotations

import argparse
import fcntl
import logging
import os
import signal
import socket
import sqlite3
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette

from sprout.accessfiles import AccessFiles
from sprout.accessfiles import Settings as AccessSettings
from sprout.accessfiles import folder_of as access_folder_of
from sprout.api.app import create_app
from sprout.api.auth import ensure_token
from sprout.controlplane.autoscale import Autoscaler
from sprout.controlplane.certificates import CERT_INTERVAL, Certificates
from sprout.controlplane.controller import Controller
from sprout.controlplane.disk import CHECK_INTERVAL, DiskWatch
from sprout.controlplane.fleet import ControlPlaneFleet
from sprout.controlplane.housekeeping import HOUSEKEEPING_FIRST_DELAY, HOUSEKEEPING_INTERVAL, Housekeeper
from sprout.controlplane.instances import InstanceLauncher, SecretBook
from sprout.controlplane.lifecycle import REFUSED, daemon_file
from sprout.controlplane.metrics import daemon_registry
from sprout.controlplane.process import ProcessRecord, record_to_json, write_json
from sprout.controlplane.reconcile import Reconciler
from sprout.controlplane.releases import ReleaseOps
from sprout.controlplane.resources import Resources
from sprout.controlplane.router_process import RouterProcess
from sprout.deploy.engine import ReleaseEngine
from sprout.errors import NotFoundError, ServiceError, UserError
from sprout.logs.ingest import LogIngester
from sprout.logs.store import LogStore
from sprout.loops import ErrorHook, Loop
from sprout.paths import Home
from sprout.process_start import Start
from sprout.providers.local import LocalProvider
from sprout.router.client import RouterControl
from sprout.spec import Manifest
from sprout.state import StateStore

log = logging.getLogger("sprout.daemon")

LOG_INTERVAL = 0.5
RELEASE_INTERVAL = 0.5
AUTOSCALE_INTERVAL = 1.0
#: How long a stopping daemon waits for drains and stops it already began.
RETIRE_TIMEOUT = 30.0
API_SHUTDOWN_TIMEOUT = 5


def main(argv: list[str] | None = None) -> int:
    """Run the daemon until asked to stop; the process exit code."""
    parser = argparse.ArgumentParser(prog="python -m sprout.controlplane", description="The Sprout daemon.")
    parser.add_argument("--home", type=Path, required=True, help="SPROUT_HOME this daemon serves")
    parser.add_argument("--api-port", type=int, default=0, help="API port on 127.0.0.1 (default: a free one)")
    parser.add_argument(
        "--router-port", type=int, default=None, help="router traffic port (default: saved, or 8080)"
    )
    parser.add_argument(
        "--router-https-port", type=int, default=None, help="router HTTPS port (default: saved, or none)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    os.environ["SPROUT_HOME"] = str(args.home)
    home = Home(args.home.resolve()).ensure()
    lock = _take_lock(home.run / "daemon.lock")
    if lock is None:
        log.error("another daemon already serves %s; exiting", home.root)
        return 3
    try:
        return Daemon(home, args.api_port, args.router_port, args.router_https_port).run()
    except UserError as exc:
        # One line the starting `sprout` reads back (`lifecycle.start_daemon`), not a traceback.
        print(f"{REFUSED}{exc}", file=sys.stderr, flush=True)
        return exc.exit_code


@dataclass
class Parts:
    """The daemon's wired collaborators, in the order they start (and stop in reverse)."""

    store: StateStore
    reconciler: Reconciler
    engine: ReleaseEngine
    tickers: list[Loop]
    log_store: LogStore
    ingester: LogIngester
    app: Starlette
    router_port: int


class Daemon:
    """Wires the control plane's parts explicitly and runs them until stopped."""

    def __init__(
        self, home: Home, api_port: int, router_port: int | None, router_https_port: int | None = None
    ) -> None:
        self.home = home
        self.api_port = api_port
        self.router_port = router_port
        self.router_https_port = router_https_port
        self.stopping = threading.Event()
        self.started_at = time.time()
        self.api_url = ""
        #: Every supervised loop, for the status report (filled by `wire`).
        self.loops: list[Loop] = []
        self.disk: DiskWatch | None = None

    def wire(self) -> Parts:
        """Build every part and adopt or start the router (explicit wiring, no globals)."""
        home = self.home
        store = StateStore(home.state_db)
        provider = LocalProvider(home)
        router = RouterProcess(home)
        handle = router.ensure(self.router_port, self.router_https_port)
        verb = "adopted" if handle.adopted else "started"
        store.record_event(
            None,
            None,
            f"router.{'adopt' if handle.adopted else 'start'}",
            f"router pid {handle.record.pid} {verb} on port {handle.port}",
            pid=handle.record.pid,
            port=handle.port,
        )
        resources = Resources(home, store)
        secrets = SecretBook()
        launcher = InstanceLauncher(home, store, provider, resources, secrets)
        disk = self.disk = DiskWatch(home.root, store)
        report = error_hook(store, disk)
        reconciler = Reconciler(
            store,
            provider,
            launcher,
            resources,
            lambda: self._router_admin(router, store, reconciler),
            on_error=report,
        )

        def running_router() -> RouterControl:
            # Only the reconcile loop restarts a missing router; the others wait for it.
            found = router.current()
            if found is None:
                raise ServiceError("router: not running; the reconcile loop restarts it")
            return router.admin(found)

        fleet = ControlPlaneFleet(
            home,
            store,
            running_router,
            resources,
            secrets,
            reconciler.lock,
            reconciler.nudge,
            reconciler.checks,
        )
        engine = ReleaseEngine(store, fleet, lambda app, version: _version_manifest(store, app, version))
        autoscaler = Autoscaler(store, running_router, lambda app, env: engine.active(app, env) is not None)
        log_store = LogStore(home.log_db)
        housekeeper = Housekeeper(home, store, log_store)
        releases = Loop(
            "releases", engine.run_pass, RELEASE_INTERVAL, first_delay=RELEASE_INTERVAL, on_error=report
        )
        engine.run_release_phases_in_background(releases.nudge)
        tickers = [
            releases,
            Loop(
                "autoscaler",
                autoscaler.tick,
                AUTOSCALE_INTERVAL,
                first_delay=AUTOSCALE_INTERVAL,
                on_error=report,
            ),
            Loop(
                "housekeeping",
                housekeeper.run,
                HOUSEKEEPING_INTERVAL,
                first_delay=HOUSEKEEPING_FIRST_DELAY,
                on_error=report,
            ),
            Loop("disk", disk.check, CHECK_INTERVAL, on_error=report),
            Loop("certificates", Certificates(store, home.tls).run_pass, CERT_INTERVAL, on_error=report),
        ]
        # A release waiting for healthy instances takes its next step as soon as the loop sees them.
        reconciler.on_health_change = releases.nudge

        def quiesce() -> None:
            # Before the router is stopped for good, stop every loop that could act on it.
            for ticker in tickers:
                ticker.stop()
            reconciler.stop()

        controller = Controller(
            home,
            store,
            provider,
            router,
            reconciler,
            resources,
            secrets,
            log_store,
            lambda app, env, version, user: engine.start(app, env, version, None, user, note="sprout up"),
            self.info,
            quiesce,
            self.stopping.set,
        )
        ingester = LogIngester(
            log_store,
            lambda: discover_logs(home),
            interval=LOG_INTERVAL,
            on_error=report,
            access=AccessFiles(access_folder_of(home.router_access_log)),
            settings=AccessSettings.from_env(),
        )
        self.loops = [reconciler.loop, ingester.loop, *tickers]
        return Parts(
            store=store,
            reconciler=reconciler,
            engine=engine,
            tickers=tickers,
            log_store=log_store,
            ingester=ingester,
            app=create_app(
                controller,
                ReleaseOps(store, engine, releases.nudge),
                ensure_token(home.token_file),
                daemon_registry(store, lambda: [loop.health() for loop in self.loops]),
            ),
            router_port=handle.port,
        )

    def run(self) -> int:
        """Start every part, serve until a stop request, stop every part; the exit code."""
        parts = self.wire()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.api_port))
        sock.listen(128)
        self.api_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        server = uvicorn.Server(
            uvicorn.Config(
                parts.app,
                log_level="warning",
                lifespan="off",
                access_log=False,
                timeout_graceful_shutdown=API_SHUTDOWN_TIMEOUT,
            )
        )
        api = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="api", daemon=True)
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: self.stopping.set())
        parts.store.record_event(
            None, None, "daemon.start", f"daemon pid {os.getpid()} serving {self.api_url}"
        )
        parts.ingester.start()
        parts.reconciler.start()
        for ticker in parts.tickers:
            ticker.start()
        api.start()
        while not server.started and api.is_alive():
            time.sleep(0.01)
        write_json(daemon_file(self.home), {**record_to_json(self._record()), "api_url": self.api_url})
        log.info("daemon pid %s: API %s, router port %s", os.getpid(), self.api_url, parts.router_port)
        while not self.stopping.wait(0.5):
            if not api.is_alive():
                log.error("API server stopped unexpectedly; shutting down")
                break
        # Reverse order; the router and the instances keep running (traffic never depends on us).
        for ticker in parts.tickers:
            ticker.stop()
        # A release command left running would hold this process's exit until it ends.
        parts.engine.close()
        parts.reconciler.stop()
        parts.reconciler.wait_retired(timeout=RETIRE_TIMEOUT)
        server.should_exit = True
        api.join(timeout=API_SHUTDOWN_TIMEOUT + 2)
        parts.ingester.stop()
        parts.log_store.close()
        try:
            parts.store.record_event(None, None, "daemon.stop", f"daemon pid {os.getpid()} stopped")
        except sqlite3.Error as exc:
            # A locked or full state store must not keep a stopping daemon from finishing its stop.
            log.error("daemon.stop not recorded: %s", exc)
        daemon_file(self.home).unlink(missing_ok=True)
        return 0

    def info(self) -> dict[str, Any]:
        """The daemon's own status."""
        return {
            "running": True,
            "pid": os.getpid(),
            "started_at": self.started_at,
            "uptime": time.time() - self.started_at,
            "api_url": self.api_url,
            "loops": [loop.health().to_json() for loop in self.loops],
            "disk": self.disk.report() if self.disk is not None else {"full_since": None},
        }

    def _record(self) -> ProcessRecord:
        import psutil

        return ProcessRecord(os.getpid(), Start.of(psutil.Process()), str(self.home.root))

    def _router_admin(
        self, router: RouterProcess, store: StateStore, reconciler: Reconciler
    ) -> RouterControl:
        """The router's admin client, restarting the router (or the HAProxy engine's shipper) if it died."""
        handle = router.current()
        if handle is not None and router.ensure_shipper():
            store.record_event(
                None, None, "router.shipper", "the HAProxy access-log shipper was not running; started it"
            )
        if handle is None:
            handle = router.ensure(None)
            reconciler.forget_table()
            store.record_event(
                None,
                None,
                "router.restart",
                f"router was not running; started pid {handle.record.pid}",
                pid=handle.record.pid,
                port=handle.port,
            )
        return router.admin(handle)


def error_hook(store: StateStore, disk: DiskWatch) -> ErrorHook:
    """How every loop reports a failure: tell the disk watch (a full disk?), then record an event."""

    def report(name: str, message: str, exc: BaseException) -> None:
        disk.noticed(exc)
        store.record_event(None, None, f"{name}.error", message)

    return report


def _version_manifest(store: StateStore, app: str, version: str) -> Manifest:
    """The manifest packed with a pushed version (what a release of it runs with)."""
    found = store.get_version(app, version)
    if found is None:
        raise NotFoundError(f"{app} {version}: no such version (push one with `sprout push`)")
    return found.manifest


def discover_logs(home: Home) -> list[tuple[Path, str]]:
    """Every log file the log store indexes: each instance's app log and the router's access log."""
    found: list[tuple[Path, str]] = [(path, "instance") for path in sorted(home.instances.glob("*/app.log"))]
    access = home.router_access_log
    if access.exists():
        found.append((access, "router"))
    return found


def _take_lock(path: Path) -> int | None:
    """Hold an exclusive lock on `path` for this process's life; None when another process holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd

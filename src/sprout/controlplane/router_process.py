"""The router as a separate process: start it when missing, adopt it after a restart, stop it on `down`.

The router runs in its own session so it outlives the daemon: a crashed or restarted control plane never
interrupts traffic. "The router process" is the router's supervisor (`python -m sprout.router`): it holds
the listening sockets and replaces its worker itself when the worker dies or hangs, with or without a
daemon, so a live supervisor is a running router even while its worker is being replaced (the daemon
starts nothing then; admin calls wait in the backlog for the new worker). Only a supervisor that is gone
is started again. Its identity (pid + start time + the token file in its command line) is recorded in
`run/router.json`, together with its ports, so a later daemon adopts it instead of starting a second one.
Stopping it (SIGTERM) stops its worker too; a worker never outlives its supervisor.

With the HAProxy engine (`sprout up --engine haproxy`, saved beside the port) "the router process" is
HAProxy itself, started from a generated config and driven through its runtime API socket; a new one is
given the saved table at once, as the embedded router restores its own state file. Its access lines go
to the shipper (`python -m sprout.router.haproxy.shipper`, recorded beside HAProxy in `run/router.json`),
which writes them to the same access files and notable log as the embedded router. Each of the two is
started when missing and adopted when running, so either restarts alone.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sprout.accessfiles import Settings as AccessSettings
from sprout.api.auth import ensure_token
from sprout.controlplane.portuse import port_in_use
from sprout.controlplane.process import (
    ProcessRecord,
    log_tail,
    read_json,
    record_from_json,
    record_to_json,
    spawn_detached,
    terminate,
    write_json,
)
from sprout.errors import ServiceError, SproutError, UserError
from sprout.paths import Home
from sprout.ports import PortBook, port_taken
from sprout.router.config import RouterConfig
from sprout.router.haproxy.config import (
    Layout,
    find_haproxy,
    make_folders,
    remove_socket_folder,
    write_config,
)

if TYPE_CHECKING:
    from sprout.router.client import RouterControl
    from sprout.router.haproxy.admin import HaproxyAdmin

# The admin clients (Jinja2 and prometheus-client for HAProxy) and the table's pydantic models are
# imported where they are used: the CLI imports this module for `up`'s engine checks and the offline
# `status`, and must start fast.

DEFAULT_PORT = 8080
START_TIMEOUT = 10.0
STOP_TIMEOUT = 15.0
#: The data planes `sprout up --engine` offers; the first is the default.
ENGINES = ("sprout", "haproxy")


@dataclass(frozen=True)
class RouterHandle:
    """A running router: its process identity and where it listens."""

    record: ProcessRecord
    port: int
    admin_port: int
    adopted: bool
    engine: str = "sprout"
    https_port: int | None = None

    @property
    def url(self) -> str:
        """The traffic URL on loopback."""
        return f"http://127.0.0.1:{self.port}/"

    @property
    def admin_url(self) -> str:
        """The admin API base URL."""
        return f"http://127.0.0.1:{self.admin_port}"


class RouterProcess:
    """Keeps one router process per SPROUT_HOME alive, and knows how to reach its admin API."""

    def __init__(self, home: Home) -> None:
        self._home = home
        self._record_file = home.run / "router.json"
        self._token_file = home.run / "router.token"
        self._ports = PortBook.of(home)
        # Unique per home: homes sharing one lease file never end each other's lease.
        self._admin_owner = f"router admin {home.root}"
        self._child: subprocess.Popen[bytes] | None = None
        self._shipper: subprocess.Popen[bytes] | None = None
        self._admin: RouterControl | None = None
        self._haproxy = Layout(home.run / "haproxy")
        # The reconcile loop, the release and scaling tickers and API calls share this object.
        self._lock = threading.RLock()

    @property
    def token_file(self) -> Path:
        """The router admin token file."""
        return self._token_file

    def saved_port(self) -> int | None:
        """The traffic port the last router of this home used, if any."""
        data = read_json(self._record_file)
        return int(data["port"]) if data and data.get("port") else None

    def saved_engine(self) -> str:
        """The engine the routers of this home run (`sprout` unless `--engine` chose another)."""
        data = read_json(self._record_file) or {}
        return str(data.get("engine") or ENGINES[0])

    def choose_engine(self, engine: str) -> None:
        """Save the engine for the next router start; UserError when it is unknown, not installed, or a
        router of another engine is running."""
        if engine not in ENGINES:
            raise UserError(f"--engine {engine!r}: unknown engine; choose one of {', '.join(ENGINES)}")
        if engine == "haproxy":
            find_haproxy()
        with self._lock:
            handle = self.current()
            if handle is not None and handle.engine != engine:
                raise UserError(
                    f"router: the {handle.engine} engine is running, not {engine}; "
                    "run `sprout down` first to change engines"
                )
            write_json(self._record_file, {**(read_json(self._record_file) or {}), "engine": engine})

    def refuse_https(self, engine: str | None, https_port: int | None) -> None:
        """UserError when HTTPS is asked of the HAProxy engine (given by `engine`, else the saved one)."""
        if https_port is not None and (engine or self.saved_engine()) == "haproxy":
            raise UserError(
                f"--https-port {https_port}: the HAProxy engine serves plain HTTP only in Sprout; "
                "for HTTPS use the default engine: `sprout down`, then "
                f"`sprout up --engine sprout --https-port {https_port}`"
            )

    def saved_https_port(self) -> int | None:
        """The HTTPS port the last router of this home used, if any."""
        data = read_json(self._record_file)
        return int(data["https_port"]) if data and data.get("https_port") else None

    def current(self) -> RouterHandle | None:
        """The recorded router when it still runs, else None."""
        with self._lock:
            self._reap()
            data = read_json(self._record_file)
            record = record_from_json(data)
            if data is None or record is None or not record.alive():
                return None
            https = int(data["https_port"]) if data.get("https_port") else None
            return RouterHandle(
                record,
                int(data["port"]),
                int(data.get("admin_port") or 0),
                adopted=self._child is None,
                engine=str(data.get("engine") or ENGINES[0]),
                https_port=https,
            )

    def ensure(self, port: int | None, https_port: int | None = None) -> RouterHandle:
        """The running router (adopted), or a new one on `port` (else the saved port, else 8080) and
        `https_port` (else the saved one, else no HTTPS)."""
        with self._lock:
            handle = self.current()
            if handle is not None:
                if port is not None and port != handle.port:
                    raise UserError(
                        f"router: already listening on port {handle.port}, not {port}; "
                        "run `sprout down` first or leave out --port"
                    )
                if https_port is not None and https_port != handle.https_port:
                    now = f"on HTTPS port {handle.https_port}" if handle.https_port else "without HTTPS"
                    raise UserError(
                        f"router: already running {now}, not on HTTPS port {https_port}; "
                        "run `sprout down` first or leave out --https-port"
                    )
                self.ensure_shipper()
                return handle
            return self._start(
                port or self.saved_port() or DEFAULT_PORT, https_port or self.saved_https_port()
            )

    def admin(self, handle: RouterHandle) -> RouterControl:
        """A client of the router's admin API (one per router process, reused across passes)."""
        with self._lock:
            url = f"unix:{self._haproxy.socket}" if handle.engine == "haproxy" else handle.admin_url
            if self._admin is None or self._admin.base_url != url:
                if self._admin is not None:
                    self._admin.close()
                if handle.engine == "haproxy":
                    self._admin = self._haproxy_admin()
                else:
                    from sprout.router.client import RouterAdmin

                    self._admin = RouterAdmin(handle.admin_url, ensure_token(self._token_file))
            return self._admin

    def stop(self) -> bool:
        """Stop the recorded router, supervisor and worker (SIGTERM, then SIGKILL); True when none runs."""
        with self._lock:
            self._reap()
            record = record_from_json(read_json(self._record_file))
            gone = True if record is None else terminate(record, STOP_TIMEOUT)
            self._reap()
            self._stop_shipper()
            data = read_json(self._record_file) or {}
            if gone and data.get("admin_port"):
                self._ports.release(int(data["admin_port"]), self._admin_owner)
            if gone and data.get("engine") == "haproxy":
                remove_socket_folder(self._haproxy)
            write_json(
                self._record_file,
                {
                    "port": data.get("port"),
                    "engine": data.get("engine"),
                    "https_port": data.get("https_port"),
                },
            )
            return gone

    def _start(self, port: int, https_port: int | None = None) -> RouterHandle:
        """Start a router on `port` (and `https_port`); a port held by another program is refused before
        anything is saved."""
        for wanted in (port, https_port):
            if wanted is not None and port_taken("127.0.0.1", wanted):
                raise port_in_use(wanted)
        ensure_token(self._token_file)
        # Put back on failure: a port the router could not take must not become the saved one.
        engine = self.saved_engine()
        previous = {"port": self.saved_port(), "engine": engine, "https_port": self.saved_https_port()}
        if engine == "haproxy":
            if https_port is not None:
                raise UserError(
                    "--https-port: HTTPS is served by the embedded router only; "
                    "run `sprout down`, then `sprout up --engine sprout`"
                )
            return self._start_haproxy(port, previous)
        admin_port = self._ports.lease(self._admin_owner)
        marker = str(self._token_file)
        settings = AccessSettings.from_env()
        cmd = [
            sys.executable,
            "-m",
            "sprout.router",
            "--listen",
            f"127.0.0.1:{port}",
            "--admin",
            f"127.0.0.1:{admin_port}",
            "--token-file",
            marker,
            "--state",
            str(self._home.run / "router-table.json"),
            "--access-log",
            str(self._home.router_access_log),
            "--access-sample",
            str(settings.sample),
            "--access-rotate-bytes",
            str(settings.rotate_bytes),
        ]
        if https_port is not None:
            cmd += ["--https", f"127.0.0.1:{https_port}", "--tls-dir", str(self._home.tls)]
        log_path = self._home.logs / "router.log"
        self._child, record = spawn_detached(cmd, log_path, marker)
        self._ports.hand_over(admin_port, self._admin_owner, record.pid)
        handle = RouterHandle(record, port, admin_port, adopted=False, https_port=https_port)
        write_json(
            self._record_file,
            {
                **record_to_json(record),
                "port": port,
                "admin_port": admin_port,
                "engine": engine,
                "https_port": https_port,
            },
        )
        self._wait_started(self.admin(handle), self._child, record, port, previous, log_path)
        return handle

    def ensure_shipper(self) -> bool:
        """With the HAProxy engine, start its access-log shipper when it is not running; True if started."""
        with self._lock:
            data = read_json(self._record_file) or {}
            if data.get("engine") != "haproxy":
                return False
            record = record_from_json(data.get("shipper"))
            if record is not None and record.alive():
                return False
            make_folders(self._haproxy)
            address = self._haproxy.access_socket
            settings = AccessSettings.from_env()
            cmd = [
                sys.executable,
                "-m",
                "sprout.router.haproxy.shipper",
                "--socket",
                str(address),
                "--notable-log",
                str(self._home.router_access_log),
                "--sample",
                str(settings.sample),
                "--rotate-bytes",
                str(settings.rotate_bytes),
            ]
            self._shipper, record = spawn_detached(cmd, self._home.logs / "haproxy-shipper.log", str(address))
            write_json(self._record_file, {**data, "shipper": record_to_json(record)})
            return True

    def _stop_shipper(self) -> None:
        """Stop the shipper (it ships what it has received first)."""
        record = record_from_json((read_json(self._record_file) or {}).get("shipper"))
        if record is not None:
            terminate(record, STOP_TIMEOUT)
        if self._shipper is not None:
            self._shipper.poll()
            self._shipper = None

    def _haproxy_admin(self) -> HaproxyAdmin:
        """A client of HAProxy's runtime API for this home's engine."""
        from sprout.router.haproxy.admin import HaproxyAdmin

        return HaproxyAdmin(self._haproxy)

    def _start_haproxy(self, port: int, previous: Mapping[str, object]) -> RouterHandle:
        """Start HAProxy from a fresh config on `port` (its shipper first), then give it the saved table."""
        layout = self._haproxy
        config = write_config(layout, f"127.0.0.1:{port}", RouterConfig())
        layout.socket.unlink(missing_ok=True)
        log_path = self._home.logs / "haproxy.log"
        self.ensure_shipper()
        shipper = (read_json(self._record_file) or {}).get("shipper")
        # `-db`: stay in the foreground (this session is its supervisor).
        cmd = [find_haproxy(), "-db", "-f", str(config)]
        self._child, record = spawn_detached(cmd, log_path, str(config))
        handle = RouterHandle(record, port, 0, adopted=False, engine="haproxy")
        write_json(
            self._record_file,
            {**record_to_json(record), "port": port, "engine": "haproxy", "shipper": shipper},
        )
        admin = self._haproxy_admin()
        try:
            self._wait_started(admin, self._child, record, port, previous, log_path)
        except SproutError:
            # Nothing will send it lines: the shipper goes with the HAProxy that failed.
            stale = record_from_json(shipper)
            if stale is not None:
                terminate(stale, STOP_TIMEOUT)
            raise
        from sprout.router.table import load_table

        admin.apply(load_table(layout.table), restored=True)
        self._admin = admin
        return handle

    def _wait_started(
        self,
        admin: RouterControl,
        child: subprocess.Popen[bytes],
        record: ProcessRecord,
        port: int,
        previous: Mapping[str, object],
        log_path: Path,
    ) -> None:
        """Wait until the new router answers; on failure put the saved settings back and say why."""
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if child.poll() is not None:
                write_json(self._record_file, previous)
                if port_taken("127.0.0.1", port):
                    raise port_in_use(port)
                raise ServiceError(
                    f"router: exited with code {child.returncode} while starting on port {port} "
                    f"(is the port in use? pass --port); last lines of {log_path}:\n{log_tail(log_path)}"
                )
            if admin.ping():
                return
            time.sleep(0.05)
        terminate(record, 2.0)
        write_json(self._record_file, previous)
        raise ServiceError(f"router: it did not answer within {START_TIMEOUT:.0f}s; see {log_path}")

    def _reap(self) -> None:
        """Collect our own exited children so they do not linger as zombies."""
        if self._child is not None and self._child.poll() is not None:
            self._child = None
        if self._shipper is not None and self._shipper.poll() is not None:
            self._shipper = None

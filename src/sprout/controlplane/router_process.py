"""The router as a separate process: start it when missing, adopt it after a restart, stop it on `down`.

The router runs in its own session so it outlives the daemon: a crashed or restarted control plane never
interrupts traffic. "The router process" is the router's supervisor (`python -m sprout.router`): it holds
the listening sockets and replaces its worker itself when the worker dies or hangs, with or without a
daemon, so a live supervisor is a running router even while its worker is being replaced (the daemon
starts nothing then; admin calls wait in the backlog for the new worker). Only a supervisor that is gone
is started again. Its identity (pid + start time + the token file in its command line) is recorded in
`run/router.json`, together with its ports, so a later daemon adopts it instead of starting a second one.
Stopping it (SIGTERM) stops its worker too; a worker never outlives its supervisor.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

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
from sprout.errors import ServiceError, UserError
from sprout.paths import Home
from sprout.ports import PortBook, port_taken
from sprout.router.client import RouterAdmin

DEFAULT_PORT = 8080
START_TIMEOUT = 10.0
STOP_TIMEOUT = 15.0


@dataclass(frozen=True)
class RouterHandle:
    """A running router: its process identity and where it listens."""

    record: ProcessRecord
    port: int
    admin_port: int
    adopted: bool

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
        self._admin: RouterAdmin | None = None
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

    def current(self) -> RouterHandle | None:
        """The recorded router when it still runs, else None."""
        with self._lock:
            self._reap()
            data = read_json(self._record_file)
            record = record_from_json(data)
            if data is None or record is None or not record.alive():
                return None
            return RouterHandle(
                record, int(data["port"]), int(data["admin_port"]), adopted=self._child is None
            )

    def ensure(self, port: int | None) -> RouterHandle:
        """The running router (adopted), or a new one on `port` (else the saved port, else 8080)."""
        with self._lock:
            handle = self.current()
            if handle is not None:
                if port is not None and port != handle.port:
                    raise UserError(
                        f"router: already listening on port {handle.port}, not {port}; "
                        "run `sprout down` first or leave out --port"
                    )
                return handle
            return self._start(port or self.saved_port() or DEFAULT_PORT)

    def admin(self, handle: RouterHandle) -> RouterAdmin:
        """A client of the router's admin API (one per router process, reused across passes)."""
        with self._lock:
            if self._admin is None or self._admin.base_url != handle.admin_url:
                if self._admin is not None:
                    self._admin.close()
                self._admin = RouterAdmin(handle.admin_url, ensure_token(self._token_file))
            return self._admin

    def stop(self) -> bool:
        """Stop the recorded router, supervisor and worker (SIGTERM, then SIGKILL); True when none runs."""
        with self._lock:
            self._reap()
            record = record_from_json(read_json(self._record_file))
            gone = True if record is None else terminate(record, STOP_TIMEOUT)
            self._reap()
            data = read_json(self._record_file) or {}
            if gone and data.get("admin_port"):
                self._ports.release(int(data["admin_port"]), self._admin_owner)
            write_json(self._record_file, {"port": data.get("port")})
            return gone

    def _start(self, port: int) -> RouterHandle:
        """Start a router on `port`; a port held by another program is refused before anything is saved."""
        if port_taken("127.0.0.1", port):
            raise port_in_use(port)
        ensure_token(self._token_file)
        # Put back on failure: a port the router could not take must not become the saved one.
        previous = {"port": self.saved_port()}
        admin_port = self._ports.lease(self._admin_owner)
        marker = str(self._token_file)
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
            str(self._home.logs / "router-access.log"),
        ]
        log_path = self._home.logs / "router.log"
        self._child, record = spawn_detached(cmd, log_path, marker)
        self._ports.hand_over(admin_port, self._admin_owner, record.pid)
        handle = RouterHandle(record, port, admin_port, adopted=False)
        write_json(self._record_file, {**record_to_json(record), "port": port, "admin_port": admin_port})
        admin = self.admin(handle)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._child.poll() is not None:
                write_json(self._record_file, previous)
                if port_taken("127.0.0.1", port):
                    raise port_in_use(port)
                raise ServiceError(
                    f"router: exited with code {self._child.returncode} while starting on port {port} "
                    f"(is the port in use? pass --port); last lines of {log_path}:\n{log_tail(log_path)}"
                )
            if admin.ping():
                return handle
            time.sleep(0.05)
        terminate(record, 2.0)
        write_json(self._record_file, previous)
        raise ServiceError(f"router: admin API did not answer within {START_TIMEOUT:.0f}s; see {log_path}")

    def _reap(self) -> None:
        """Collect our own exited child so it does not linger as a zombie."""
        if self._child is not None and self._child.poll() is not None:
            self._child = None

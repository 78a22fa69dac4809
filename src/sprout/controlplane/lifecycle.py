"""Starting, finding and stopping the daemon from the outside (the CLI side of `sprout daemon …`).

The daemon records itself in `run/daemon.json` ({pid, started_at, marker, api_url}) once its API
listens; that file plus a live process with the same pid, start time and `--home` argument is the only
proof that a daemon runs. Starting twice is safe: the daemon also holds `run/daemon.lock`.
"""

from __future__ import annotations

import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from sprout.controlplane.process import (
    ProcessRecord,
    log_tail,
    read_json,
    record_from_json,
    spawn_detached,
    terminate,
)
from sprout.errors import ServiceError, UserError
from sprout.paths import Home

START_TIMEOUT = 20.0
STOP_TIMEOUT = 30.0
#: How a daemon that refused to start (a user error, exit 2) begins its last log line.
REFUSED = "refused: "


@dataclass(frozen=True)
class DaemonInfo:
    """A running daemon: its process and its API."""

    record: ProcessRecord
    api_url: str


def daemon_file(home: Home) -> Path:
    """Where the daemon records itself."""
    return home.run / "daemon.json"


def daemon_log(home: Home) -> Path:
    """The daemon's own log file."""
    return home.logs / "daemon.log"


def running_daemon(home: Home) -> DaemonInfo | None:
    """The recorded daemon when it still runs, else None."""
    data = read_json(daemon_file(home))
    record = record_from_json(data)
    if data is None or record is None or not record.alive():
        return None
    return DaemonInfo(record, str(data["api_url"]))


#: Below this many free bytes under the home, a daemon that failed to start is said to lack room.
NEEDS_FREE = 1024 * 1024


def start_daemon(
    home: Home, api_port: int | None = None, router_port: int | None = None, https_port: int | None = None
) -> DaemonInfo:
    """The running daemon, or a new detached one once its API answers."""
    found = running_daemon(home)
    if found is not None:
        return found
    home.ensure()
    cmd = [sys.executable, "-m", "sprout.controlplane", "--home", str(home.root)]
    if api_port is not None:
        cmd += ["--api-port", str(api_port)]
    if router_port is not None:
        cmd += ["--router-port", str(router_port)]
    if https_port is not None:
        cmd += ["--router-https-port", str(https_port)]
    log_path = daemon_log(home)
    child, _ = spawn_detached(cmd, log_path, marker=str(home.root))
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        found = running_daemon(home)
        if found is not None:
            return found
        if child.poll() is not None:
            # Lost a race with another `sprout` starting the daemon at the same moment: use that one.
            found = running_daemon(home)
            if found is not None:
                return found
            refusal = _refusal(log_path) if child.returncode == UserError.exit_code else None
            if refusal is not None:
                raise UserError(refusal)
            free = shutil.disk_usage(home.root).free
            if free < NEEDS_FREE:
                # Its state store cannot open (SQLite needs room for its journal), nor its log say why.
                raise ServiceError(
                    f"daemon: cannot start: disk full under {home.root} ({free} bytes free); the router and "
                    "instances keep serving without it; free space and run `sprout daemon start`"
                )
            raise ServiceError(
                f"daemon: exited with code {child.returncode} while starting; "
                f"last lines of {log_path}:\n{log_tail(log_path)}"
            )
        time.sleep(0.05)
    raise ServiceError(f"daemon: did not come up within {START_TIMEOUT:.0f}s; see {log_path}")


def _refusal(log_path: Path) -> str | None:
    """The one-line reason a daemon refused to start, from the last line of its log."""
    lines = log_tail(log_path, 1).splitlines()
    return lines[-1].removeprefix(REFUSED) if lines and lines[-1].startswith(REFUSED) else None


def stop_daemon(home: Home, timeout: float = STOP_TIMEOUT) -> bool:
    """SIGTERM the daemon and wait for its graceful exit (then SIGKILL); False when none was running."""
    found = running_daemon(home)
    if found is None:
        return False
    terminate(found.record, timeout)
    return True

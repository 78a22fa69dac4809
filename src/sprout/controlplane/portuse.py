"""A traffic port another program holds: found before anything starts, named with the program holding it."""

from __future__ import annotations

import psutil

from sprout.errors import UserError


def holder(port: int) -> str | None:
    """`name (pid N)` of the program listening on `port`, when this user may see it; else None."""
    try:
        connections = psutil.net_connections(kind="tcp")
    except (psutil.Error, OSError):
        return None
    for conn in connections:
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
            try:
                return f"{psutil.Process(conn.pid).name()} (pid {conn.pid})"
            except psutil.Error:
                return f"pid {conn.pid}"
    return None


def port_in_use(port: int) -> UserError:
    """The one-line error for a traffic port another program holds."""
    who = holder(port) or "another program"
    return UserError(
        f"router: port {port} is already in use by {who}; "
        f"stop that program or pick another port with `sprout up --port N`"
    )

"""How a router health-check result reads, and what a run of them says, for every screen that shows one.

The router reports each target's last check as `{path, ok, status, error, latency_ms, at, repeats}`
(`repeats`: checks in a row with this same outcome). `sprout status`, events, the dashboard and the
failure messages of `up`/`deploy` all word it with `describe_check`, so a user reads the same line
everywhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

#: Check intervals in a row of one same 4xx answer after which the path, not the app's speed, is wrong.
WRONG_PATH_INTERVALS = 3


def describe_check(check: Mapping[str, Any] | None) -> str:
    """`GET /healthz answered 404 in 1.2 ms (5 checks in a row)`, or why there was no answer."""
    if not check:
        return "no health check yet"
    path = check.get("path") or "?"
    if check.get("status") is not None:
        text = f"GET {path} answered {check['status']} in {_ms(check.get('latency_ms'))}"
    else:
        error = str(check.get("error") or "no answer")
        # A timeout's latency is the timeout itself: the error already says it.
        text = f"GET {path}: {error}" + (
            "" if error.startswith("no answer") else f" after {_ms(check.get('latency_ms'))}"
        )
    repeats = int(check.get("repeats") or 1)
    return text + (f" ({repeats} checks in a row)" if repeats > 1 else "")


def wrong_path(checks: Iterable[Mapping[str, Any] | None]) -> tuple[str, int] | None:
    """(path, status) when every check answered one same 4xx for `WRONG_PATH_INTERVALS` checks or more.

    A 4xx is the app saying "no such page", not "not ready yet": waiting longer cannot help.
    """
    found: set[tuple[str, int]] = set()
    seen = 0
    for check in checks:
        seen += 1
        status = check.get("status") if check else None
        if (
            check is None
            or not isinstance(status, int)
            or not 400 <= status < 500
            or int(check.get("repeats") or 0) < WRONG_PATH_INTERVALS
        ):
            return None
        found.add((str(check.get("path")), status))
    return found.pop() if seen and len(found) == 1 else None


def wrong_path_message(path: str, status: int) -> str:
    """Why waiting stopped early: the health path answers a 4xx on every check."""
    return (
        f"every health check of GET {path} answered {status} for {WRONG_PATH_INTERVALS} intervals: "
        "the path is wrong, not slow; set [health] path in sprout.toml to a path the app answers with "
        "2xx/3xx (or make the app answer this one) and try again"
    )


def _ms(value: Any) -> str:
    if not isinstance(value, int | float):
        return "? ms"
    return f"{value:.0f} ms" if value >= 10 else f"{value:.1f} ms"

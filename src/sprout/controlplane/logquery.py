"""`sprout logs` queries as the API takes them (strings) against the central log store."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from sprout.controlplane.durations import parse_since
from sprout.errors import UserError
from sprout.logs.store import LogStore

DEFAULT_LIMIT = 200
LIMIT_MAX = 10_000


def query_logs(store: LogStore, query: Mapping[str, str]) -> dict[str, Any]:
    """Lines matching the query's filters (`after` pages forward by id, for `logs -f`) and the newest id."""
    try:
        limit = min(int(query.get("limit") or DEFAULT_LIMIT), LIMIT_MAX)
        after = int(query["after"]) if query.get("after") else None
    except ValueError as exc:
        raise UserError(f"logs: `limit` and `after` must be whole numbers ({exc})") from exc
    since = parse_since(query["since"], time.time()) if query.get("since") else None
    rows = store.query(
        since=since,
        instance=query.get("instance") or None,
        version=query.get("version") or None,
        app=query.get("app") or None,
        env=query.get("env") or None,
        source=query.get("source") or None,
        grep=query.get("grep") or None,
        limit=limit,
        after_id=after,
    )
    return {"lines": [asdict(row) for row in rows], "last_id": store.last_id()}

"""`sprout logs` queries as the API takes them (strings) against the central log store and access files."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from sprout.accessfiles import SEARCH_BUDGET, SEARCH_BUDGET_MAX, AccessFiles, AccessLine
from sprout.controlplane.durations import parse_since
from sprout.errors import UserError
from sprout.logs.store import LogStore

DEFAULT_LIMIT = 200
LIMIT_MAX = 10_000


def query_logs(
    store: LogStore, query: Mapping[str, str], access: AccessFiles | None = None
) -> dict[str, Any]:
    """Lines matching the query's filters (`after` pages forward by id, for `logs -f`) and the newest id
    when they were read.

    A tail of router lines also takes the successful requests from the access files (id 0: they are not
    in the store, so `after` never pages through them; `logs -f` follows errors and slow requests), searched
    for `search_seconds` at most; `access_unread` then says what older files were not read.
    """
    try:
        limit = min(int(query.get("limit") or DEFAULT_LIMIT), LIMIT_MAX)
        after = int(query["after"]) if query.get("after") else None
    except ValueError as exc:
        raise UserError(f"logs: `limit` and `after` must be whole numbers ({exc})") from exc
    try:
        budget = float(query.get("search_seconds") or SEARCH_BUDGET)
    except ValueError:
        budget = -1.0
    if not 0 <= budget <= SEARCH_BUDGET_MAX:
        raise UserError(
            f"logs: search_seconds={query['search_seconds']!r}: give seconds from 0 to {SEARCH_BUDGET_MAX:g}"
        )
    since = parse_since(query["since"], time.time()) if query.get("since") else None
    instance, app, env = (query.get(key) or None for key in ("instance", "app", "env"))
    version, source, grep = (query.get(key) or None for key in ("version", "source", "grep"))
    # `last_id` is read with the lines: a line stored between the two would be neither shown nor followed.
    with store.one_moment():
        stored = store.query(
            since=since,
            instance=instance,
            version=version,
            app=app,
            env=env,
            source=source,
            grep=grep,
            limit=limit,
            after_id=after,
        )
        page: dict[str, Any] = {"last_id": store.last_id()}
    rows = [asdict(row) for row in stored]
    if access is not None and after is None and source in (None, "router") and not (instance or app or env):
        found = access.search(grep=grep, since=since, version=version, limit=limit, budget=budget)
        rows = sorted([*rows, *map(_row, found.lines)], key=lambda r: r["ts"])[-limit:]
        if found.unread_files:
            # Said, so a search that found nothing is not read as "there is nothing".
            page["access_unread"] = {
                "files": found.unread_files,
                "bytes": found.unread_bytes,
                "until": found.unread_until,
                "folder": str(access.folder),
            }
    page["lines"] = rows
    return page


def _row(line: AccessLine) -> dict[str, Any]:
    """An access-file line in the shape of a stored row."""
    return {
        "id": 0,
        "ts": line.ts,
        "source": "router",
        "stream": "access",
        "instance": "",
        "app": "",
        "env": "",
        "version": line.version,
        "zone": line.zone,
        "msg": line.message(),
    }

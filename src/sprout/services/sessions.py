"""The session-store resource: the SESSION_STORE_URL an environment's instances get; a reachability check."""

from __future__ import annotations

from pathlib import Path

from sprout.errors import ServiceError, UserError
from sprout.runtime.sessions import SessionStoreError, store_from_url
from sprout.services.memcached import MemcachedNode
from sprout.services.memcached import session_store_url as memcached_url

ENGINES = ("sqlite", "memcached", "redis")


def session_store_url(
    engine: str, env_dir: Path, nodes: list[MemcachedNode] | None = None, url: str | None = None
) -> str:
    """SESSION_STORE_URL for `[resources.sessions]`: a SQLite file, the managed memcached nodes, or `url`."""
    if url:
        return url
    if engine == "sqlite":
        return f"sqlite:///{(env_dir / 'sessions.sqlite3').resolve()}"
    if engine == "memcached":
        if not nodes:
            raise ServiceError('sessions: engine "memcached" has no running node; start the nodes first')
        return memcached_url(nodes)
    if engine == "redis":
        raise UserError(
            '[resources.sessions] engine "redis" needs a url, e.g. url = "redis://127.0.0.1:6379/0"'
        )
    raise UserError(f"[resources.sessions] engine {engine!r} is unknown; use one of {', '.join(ENGINES)}")


def check_session_store(url: str) -> None:
    """Raise ServiceError unless the store behind `url` answers."""
    try:
        store = store_from_url(url)
    except SessionStoreError as exc:
        raise UserError(str(exc)) from exc
    try:
        store.ping()
    except SessionStoreError as exc:
        raise ServiceError(f"{exc}; check that the session store runs") from exc
    finally:
        store.close()

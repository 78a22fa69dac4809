"""The session-store resource: the SESSION_STORE_URL (and _ZONES) instances get; a reachability check."""

from __future__ import annotations

from pathlib import Path

from sprout.errors import ServiceError, UserError
from sprout.runtime.sessions import SessionStoreError, store_from_url
from sprout.services.memcached import MemcachedNode, session_store_zones
from sprout.services.memcached import session_store_url as memcached_url

ENGINES = ("sqlite", "memcached", "redis")
ENV_URL = "SESSION_STORE_URL"
ENV_ZONES = "SESSION_STORE_ZONES"


def session_store_env(
    engine: str,
    env_dir: Path,
    nodes: list[MemcachedNode] | None = None,
    url: str | None = None,
    zone: str | None = None,
) -> dict[str, str]:
    """SESSION_STORE_URL for `[resources.sessions]` (a SQLite file, the managed memcached nodes, or `url`),
    plus SESSION_STORE_ZONES when the memcached nodes' zones are known; `zone`'s node comes first."""
    if url:
        return standard_memcached_env(url, zone)
    if engine == "sqlite":
        return {ENV_URL: f"sqlite:///{(env_dir / 'sessions.sqlite3').resolve()}"}
    if engine == "memcached":
        if not nodes:
            raise ServiceError('sessions: engine "memcached" has no running node; start the nodes first')
        return {ENV_URL: memcached_url(nodes, zone), ENV_ZONES: session_store_zones(nodes)}
    if engine == "redis":
        raise UserError(
            '[resources.sessions] engine "redis" needs a url, e.g. url = "redis://127.0.0.1:6379/0"'
        )
    raise UserError(f"[resources.sessions] engine {engine!r} is unknown; use one of {', '.join(ENGINES)}")


def standard_memcached_env(url: str, zone: str | None = None) -> dict[str, str]:
    """A `memcached://` URL in the shape every client reads: zone annotations (`a=host:port`) move out of
    SESSION_STORE_URL into SESSION_STORE_ZONES, and `zone`'s nodes come first."""
    scheme, _, rest = url.partition("://")
    if scheme != "memcached":
        return {ENV_URL: url}
    nodes, sep, tail = rest.partition("/")
    items = [item.rpartition("=") for item in nodes.split(",") if item]
    if not any(named for named, _, _ in items):
        return {ENV_URL: url}
    items.sort(key=lambda item: item[0] != zone)
    plain = f"{scheme}://{','.join(hostport for _, _, hostport in items)}{sep}{tail}"
    zones = ",".join(f"{named}={hostport}" for named, _, hostport in items if named)
    return {ENV_URL: plain, ENV_ZONES: zones}


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

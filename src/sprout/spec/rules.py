"""Rules the manifest, the planner and the router share: when two host names are one, and which host
names an environment answers. No imports beyond the standard library: the router loads this too."""

from __future__ import annotations

from collections.abc import Iterable

#: The environment that answers the manifest's host names as written.
PRODUCTION = "production"


def host_key(host: str) -> str:
    """The form in which host names are compared (and stored by the router): trimmed, lower case."""
    return host.strip().lower()


def repeated_hosts(hosts: Iterable[str]) -> list[str]:
    """The host names listed more than once (compared by `host_key`), each once, in order of repeat."""
    seen: set[str] = set()
    found: list[str] = []
    for host in hosts:
        key = host_key(host)
        if key in seen and key not in found:
            found.append(key)
        seen.add(key)
    return found


def served_hosts(env: str, hosts: Iterable[str]) -> list[str]:
    """The host names an environment answers: the manifest's for production, `<env>.<host>` for the others."""
    if env == PRODUCTION:
        return list(hosts)
    return [f"*.{env}.{h[2:]}" if h.startswith("*.") else f"{env}.{h}" for h in hosts]

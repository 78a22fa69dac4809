"""A route at runtime: its weighted groups, limits and edge cache."""

from __future__ import annotations

from sprout.router.balancer import Group
from sprout.router.cache import EdgeCache
from sprout.router.table import RouteSpec


class Route:
    """One environment as the proxy sees it; rebuilt on every table change."""

    __slots__ = ("cache", "groups", "hsts", "log_name", "max_body", "name", "spec")

    def __init__(self, spec: RouteSpec, groups: list[Group], cache: EdgeCache | None) -> None:
        self.spec = spec
        self.name = spec.name
        self.log_name = spec.name.encode("utf-8", "replace")
        self.groups = groups
        self.max_body = spec.max_body
        self.cache = cache
        #: The Strict-Transport-Security line sent over HTTPS (empty: HSTS off).
        self.hsts = b"Strict-Transport-Security: max-age=%d\r\n" % spec.hsts if spec.hsts else b""

    def version_key(self) -> tuple[tuple[str, str, tuple[str, ...]], ...]:
        """What the cache depends on: each group's version and its targets' versions."""
        return tuple((g.name, g.version, tuple(sorted(t.version for t in g.targets))) for g in self.groups)

"""The per-version cache layout: `<cache_dir>/<sha256>/` holds `app/`, `venv/` and, last, `.ready`."""

from __future__ import annotations

import os

#: Written last by a bootstrap: the only proof that a cache folder is complete.
READY = ".ready"


class Prepared:
    """A complete cache folder of one bundle: the unpacked app and its virtualenv."""

    __slots__ = ("app_dir", "cached", "root", "venv")

    def __init__(self, root: str, *, cached: bool) -> None:
        self.root = root
        self.app_dir = os.path.join(root, "app")
        self.venv = os.path.join(root, "venv")
        self.cached = cached


def cache_root(cache_dir: str, sha256: str) -> str:
    """The cache folder of one bundle hash."""
    return os.path.join(cache_dir, sha256)


def cached(cache_dir: str, sha256: str) -> Prepared | None:
    """The complete cache folder of bundle `sha256`, or None if no bootstrap has finished it."""
    root = cache_root(cache_dir, sha256)
    if not os.path.isfile(os.path.join(root, READY)):
        return None
    return Prepared(root, cached=True)

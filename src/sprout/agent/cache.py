"""The per-version cache layout: `<cache_dir>/<sha256>/` holds `app/`, `venv/` and, last, `.ready`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

#: Written last by a bootstrap: the only proof that a cache folder is complete.
READY = ".ready"


@dataclass(frozen=True)
class Prepared:
    """A complete cache folder of one bundle: the unpacked app and its virtualenv."""

    root: Path
    app_dir: Path
    venv: Path
    cached: bool


def cache_root(cache_dir: Path, sha256: str) -> Path:
    """The cache folder of one bundle hash."""
    return cache_dir / sha256


def cached(cache_dir: Path, sha256: str) -> Prepared | None:
    """The complete cache folder of bundle `sha256`, or None if no bootstrap has finished it."""
    root = cache_root(cache_dir, sha256)
    if not (root / READY).is_file():
        return None
    return Prepared(root, root / "app", root / "venv", cached=True)

"""The cache layout: `<cache_dir>/<sha256>/` holds `app/`, `venv/` (a Python app's) and, last, `.ready`.

A bundle whose manifest declares `[app] install_inputs` gets what `install` makes from a shared
dependency layer instead: `<cache_dir>/deps/<key>/` holds `venv/` (a Python app's), `outputs/` (the
folders `[app] install_outputs` names) and, last, `.ready`. The bundle's `venv` is a relative symlink
to the layer's, the output folders are hard-linked copies in its `app/`, and its `deps` symlink names
the layer it came from, so housekeeping keeps that layer while the bundle is cached.
"""

from __future__ import annotations

import os

#: Written last by a bootstrap: the only proof that a cache folder is complete.
READY = ".ready"
#: The folder of the shared dependency layers; a bundle folder is named by a 64-digit hash, never this.
DEPS = "deps"


class Prepared:
    """A complete cache folder of one bundle: the unpacked app and its virtualenv (None: not Python)."""

    __slots__ = ("app_dir", "cached", "root", "venv")

    def __init__(self, root: str, *, cached: bool) -> None:
        self.root = root
        self.app_dir = os.path.join(root, "app")
        venv = os.path.join(root, "venv")
        self.venv: str | None = venv if os.path.lexists(venv) else None
        self.cached = cached


def cache_root(cache_dir: str, sha256: str) -> str:
    """The cache folder of one bundle hash."""
    return os.path.join(cache_dir, sha256)


def deps_root(cache_dir: str, key: str) -> str:
    """The folder of one shared dependency layer."""
    return os.path.join(cache_dir, DEPS, key)


def cached(cache_dir: str, sha256: str) -> Prepared | None:
    """The complete cache folder of bundle `sha256`, or None if no bootstrap has finished it."""
    root = cache_root(cache_dir, sha256)
    if not os.path.isfile(os.path.join(root, READY)):
        return None
    # A shared dependency layer deleted by hand leaves the bundle's venv symlink dangling: bootstrap again.
    venv = os.path.join(root, "venv")
    if os.path.lexists(venv) and not os.path.isdir(venv):
        return None
    return Prepared(root, cached=True)

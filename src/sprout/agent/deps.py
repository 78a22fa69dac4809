"""Shared dependency layers: what `install` makes, once per (Python, install command, install inputs).

A manifest that lists `[app] install_inputs` promises that those files (with the `install` command)
alone decide what `install` makes, as a Heroku buildpack's cache is keyed by `requirements.txt` or
`composer.lock`. What it makes is a Python app's virtualenv and the folders `[app] install_outputs`
names inside the app folder (`vendor`, `node_modules`). The layer's key hashes this machine's Python,
the command, each input's relative path and bytes in the listed order, and (when set) the outputs and
`python = false`. The story, once per key: take an exclusive file lock beside the layer's folder (a
second bootstrap needing the same layer waits here), and if its `.ready` marker is missing, clear any
half-done attempt, create the virtualenv (a Python app only), run `install` in the unpacked app folder
of the version that first needs it, keep hard-linked copies of its output folders, and write the marker
last; then, still under the lock, link the version to the layer: its `venv` and `deps` symlinks, and
hard-linked copies of the output folders in its app folder. A version whose code alone changed finds
the marker and installs nothing.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import time
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path

from sprout.agent.appuser import settle_modes
from sprout.agent.cache import DEPS, READY, deps_root
from sprout.agent.env import base_env
from sprout.agent.install import Emit, InstallError, create_venv, exclusive_lock, run_install, write_marker
from sprout.spec.source import MANIFEST_NAME

#: The layer's folder of the output folders `install` made, by their paths in the app folder.
OUTPUTS = "outputs"


def deps_key(
    app_dir: Path, install: str, inputs: Sequence[str], outputs: Sequence[str] = (), *, python: bool = True
) -> str:
    """The key of the dependency layer that `install`, fed by `inputs` inside `app_dir`, builds here."""
    digest = hashlib.sha256()

    def feed(part: bytes) -> None:
        # Length-prefixed, so no two different sequences of parts hash alike.
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)

    feed(repr(tuple(sys.version_info)).encode())
    feed(os.path.realpath(sys.executable).encode())
    feed(install.encode())
    for relative in inputs:
        feed(relative.encode())
        feed(_read_input(app_dir, relative))
    # Only when set, so the layers of Python apps that list no outputs keep the keys they had.
    if outputs or not python:
        feed(repr((python, tuple(outputs))).encode())
    return digest.hexdigest()


def _read_input(app_dir: Path, relative: str) -> bytes:
    """The bytes of one install input; it must be a file inside the unpacked app folder."""
    path = app_dir / relative
    inside = path.resolve().is_relative_to(app_dir.resolve())
    if not inside or not path.is_file():
        raise InstallError(
            f"install input {relative!r} is not a file in the bundle; add it to the app folder or "
            "remove it from [app] install_inputs, and push a new version"
        )
    return path.read_bytes()


def link_deps(
    bundle: Path,
    *,
    cache_dir: Path,
    key: str,
    install: str,
    python: bool,
    outputs: Sequence[str],
    environ: Mapping[str, str],
    env_vars: Mapping[str, str],
    emit: Emit,
) -> None:
    """Give the bundle folder `bundle` layer `key`'s virtualenv (when `python`) and output folders,
    installing the layer from the bundle's `app` folder first if none is complete."""
    root = Path(deps_root(str(cache_dir), key))
    label = f"dependencies {key[:12]}"
    (cache_dir / DEPS).mkdir(parents=True, exist_ok=True)

    def waiting() -> None:
        emit("system", f"{label}: another bootstrap is installing them; waiting")

    # Linked under the layer's lock: housekeeping removes a layer only under it, after checking that no
    # version links to it, so a layer is never removed between being found complete and being linked.
    with exclusive_lock(cache_dir / DEPS / f"{key}.lock", waiting):
        if (root / READY).is_file():
            for relative in outputs:
                _link_tree(root / OUTPUTS / relative, bundle / "app" / relative)
            emit("system", f"{label}: reused (install inputs unchanged)")
        else:
            _install(root, key, bundle / "app", install, python, outputs, environ, env_vars, emit)
        # Relative, so the links stay inside the cache folder however that folder is reached (a mount).
        if python:
            (bundle / "venv").symlink_to(os.path.relpath(root / "venv", bundle), target_is_directory=True)
        (bundle / DEPS).symlink_to(os.path.relpath(root, bundle), target_is_directory=True)


def _install(
    root: Path,
    key: str,
    app_dir: Path,
    install: str,
    python: bool,
    outputs: Sequence[str],
    environ: Mapping[str, str],
    env_vars: Mapping[str, str],
    emit: Emit,
) -> None:
    """Build layer `key` from nothing; the caller holds its lock."""
    label = f"dependencies {key[:12]}"
    emit("system", f"{label}: installing")
    started = time.monotonic()
    if root.exists():
        emit("system", f"{label}: removing an incomplete earlier install")
        shutil.rmtree(root)
    root.mkdir(mode=0o755)
    venv = root / "venv"
    cache_dir = root.parent.parent
    if python:
        create_venv(venv, with_pip=True, cache_dir=cache_dir)
    env = base_env(environ, str(venv) if python else None)
    env.update(env_vars)
    run_install(install, cwd=app_dir, env=env, emit=emit)
    for relative in outputs:
        made = app_dir / relative
        if made.is_symlink() or not made.is_dir():
            raise InstallError(
                f"install output {relative!r} is not a folder after {install!r}; make the command create "
                "it in the app folder or correct [app] install_outputs, and push a new version"
            )
        _link_tree(made, root / OUTPUTS / relative)
    seconds = round(time.monotonic() - started, 3)
    settle_modes(str(root), str(cache_dir))
    write_marker(root / READY, {"key": key, "install": install, "seconds": seconds, "at": time.time()})
    emit("system", f"{label}: installed in {seconds}s")


def _link_tree(source: Path, target: Path) -> None:
    """Copy the folder `source` to `target` as hard links (a copy across file systems), replacing it."""
    if target.is_symlink() or target.is_file():
        target.unlink()
    elif target.exists():
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(source, target, symlinks=True, copy_function=_link_or_copy)


def _link_or_copy(source: str, target: str) -> None:
    """Hard-link `source` as `target`: the layer's files are never written again, so sharing is safe."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def bundle_install(app_dir: Path) -> tuple[bool, tuple[str, ...]]:
    """`[app] python` and `[app] install_outputs` of the bundle's own sprout.toml (validated at push);
    read here, so every place that bootstraps a bundle agrees without carrying them."""
    try:
        # utf-8-sig: a manifest saved with a byte-order mark is valid (spec/load.py reads it the same way).
        data = tomllib.loads((app_dir / MANIFEST_NAME).read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return True, ()
    app = data.get("app")
    app = app if isinstance(app, dict) else {}
    python = app.get("python", True)
    outputs = app.get("install_outputs") or ()
    if not isinstance(python, bool) or not isinstance(outputs, list | tuple):
        raise InstallError(
            f"{MANIFEST_NAME}: [app] python or install_outputs is malformed; run `sprout validate`"
        )
    return python, tuple(str(relative).strip("/") for relative in outputs)

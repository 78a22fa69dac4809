"""Shared dependency layers: one virtualenv per (Python, install command, install inputs), across versions.

A manifest that lists `[app] install_inputs` promises that those files (with the `install` command)
alone decide what `install` puts in the virtualenv, as a Heroku buildpack's cache is keyed by
`requirements.txt`. The layer's key hashes this machine's Python, the command, and each input's
relative path and bytes in the listed order. The story, once per key: take an exclusive file lock
beside the layer's folder (a second bootstrap needing the same layer waits here), and if its `.ready`
marker is missing, clear any half-done attempt, create the virtualenv, run `install` in the unpacked
app folder of the version that first needs it with VIRTUAL_ENV and PATH pointing at the layer, and
write the marker last; then, still under the lock, link the version's `venv` to the layer. A version
whose code alone changed finds the marker and installs nothing.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from sprout.agent.appuser import settle_modes
from sprout.agent.cache import DEPS, READY, deps_root
from sprout.agent.env import base_env
from sprout.agent.install import Emit, InstallError, create_venv, exclusive_lock, run_install, write_marker


def deps_key(app_dir: Path, install: str, inputs: Sequence[str]) -> str:
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
    link: Path,
    *,
    cache_dir: Path,
    key: str,
    app_dir: Path,
    install: str,
    environ: Mapping[str, str],
    env_vars: Mapping[str, str],
    emit: Emit,
) -> None:
    """Symlink `link` to layer `key`'s venv, installing the layer from `app_dir` first if none is complete."""
    root = Path(deps_root(str(cache_dir), key))
    venv = root / "venv"
    label = f"dependencies {key[:12]}"
    (cache_dir / DEPS).mkdir(parents=True, exist_ok=True)

    def waiting() -> None:
        emit("system", f"{label}: another bootstrap is installing them; waiting")

    # Linked under the layer's lock: housekeeping removes a layer only under it, after checking that no
    # version links to it, so a layer is never removed between being found complete and being linked.
    with exclusive_lock(cache_dir / DEPS / f"{key}.lock", waiting):
        if (root / READY).is_file():
            emit("system", f"{label}: reused (install inputs unchanged)")
        else:
            _install(root, key, app_dir, install, environ, env_vars, emit)
        # Relative, so the link stays inside the cache folder however that folder is reached (a mount).
        link.symlink_to(os.path.relpath(venv, link.parent), target_is_directory=True)


def _install(
    root: Path,
    key: str,
    app_dir: Path,
    install: str,
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
    create_venv(venv, with_pip=True)
    env = base_env(environ, str(venv))
    env.update(env_vars)
    run_install(install, cwd=app_dir, env=env, emit=emit)
    seconds = round(time.monotonic() - started, 3)
    settle_modes(str(root), str(root.parent.parent))
    write_marker(root / READY, {"key": key, "install": install, "seconds": seconds, "at": time.time()})
    emit("system", f"{label}: installed in {seconds}s")

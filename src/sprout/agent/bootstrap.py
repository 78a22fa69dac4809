"""Bootstrap a version bundle on this machine: fetch, verify, unpack, create the venv, run `install`.

The story, once per bundle hash: take an exclusive file lock beside the cache folder (a second instance
of the same version waits here), and if the folder is not yet complete, clear any half-done attempt,
fetch the bundle from the artifact store (which verifies its sha256), unpack it safely, create a
virtualenv (unless the bundle's manifest says `python = false`), run the app's `install` command in the
unpacked folder, and write the `.ready` marker last.
The marker is the only proof of a complete folder, so an install that crashed is simply done again.
A later instance finds the marker without taking the lock and starts at once.

When the manifest lists `install_inputs`, the virtualenv step is the shared dependency layer's instead
(`sprout.agent.deps`): the bundle's `venv` becomes a relative symlink to a layer that an earlier version
with the same inputs may already have installed, and the folders `[app] install_outputs` names are
hard-linked from it, so a release that changes only code installs nothing.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from sprout.agent.appuser import settle_modes
from sprout.agent.cache import READY, Prepared, cache_root, cached
from sprout.agent.deps import bundle_install, deps_key, link_deps
from sprout.agent.env import base_env
from sprout.agent.install import Emit, create_venv, exclusive_lock, run_install, write_marker


def prepare(
    *,
    sha256: str,
    store_url: str,
    cache_dir: Path,
    install: str | None,
    environ: Mapping[str, str],
    env_vars: Mapping[str, str],
    emit: Emit,
    install_inputs: Sequence[str] | None = None,
) -> Prepared:
    """A complete cache folder for bundle `sha256`, bootstrapping it first if no instance has yet.

    `install` runs with `environ`'s passthrough variables and `env_vars`; with `install_inputs`, its
    virtualenv is the dependency layer those files key (see `sprout.agent.deps`).
    """
    ready = cached(str(cache_dir), sha256)
    if ready is not None:
        # The marker's time says when the folder was last used: housekeeping keeps recent ones.
        with contextlib.suppress(OSError):
            os.utime(Path(ready.root) / READY)
        return ready
    root = Path(cache_root(str(cache_dir), sha256))
    cache_dir.mkdir(parents=True, exist_ok=True)

    def waiting() -> None:
        emit("system", f"bundle {sha256[:12]}: another instance is bootstrapping it; waiting")

    with exclusive_lock(cache_dir / f"{sha256}.lock", waiting):
        ready = cached(str(cache_dir), sha256)
        if ready is not None:
            return ready
        _bootstrap(root, sha256, store_url, cache_dir, install, install_inputs, environ, env_vars, emit)
    return Prepared(str(root), cached=False)


def _bootstrap(
    root: Path,
    sha256: str,
    store_url: str,
    cache_dir: Path,
    install: str | None,
    install_inputs: Sequence[str] | None,
    environ: Mapping[str, str],
    env_vars: Mapping[str, str],
    emit: Emit,
) -> None:
    """Build the cache folder from nothing; the caller holds the bundle's lock."""
    started = time.monotonic()
    if root.exists():
        emit("system", f"bundle {sha256[:12]}: removing an incomplete earlier bootstrap")
        # rmtree unlinks a venv symlink without following it: a shared layer is never removed from here.
        shutil.rmtree(root)
    root.mkdir(mode=0o755)
    # Imported here: an instance of an already cached version never needs the bundle machinery.
    from sprout.bundle import open_store, safe_unpack

    store = open_store(store_url)
    emit("system", f"bundle {sha256[:12]}: fetching from {store.url}")
    archive = store.get(sha256, root / "bundle.tar.gz")
    safe_unpack(archive, root / "app", expected_sha256=sha256)
    archive.unlink()
    emit("system", f"bundle {sha256[:12]}: verified and unpacked")
    python, outputs = bundle_install(root / "app")
    marker: dict[str, object] = {"sha256": sha256}
    if install and install_inputs is not None:
        key = deps_key(root / "app", install, install_inputs, outputs, python=python)
        link_deps(
            root,
            cache_dir=cache_dir,
            key=key,
            install=install,
            python=python,
            outputs=outputs,
            environ=environ,
            env_vars=env_vars,
            emit=emit,
        )
        marker["deps"] = key
    else:
        venv = root / "venv"
        if python:
            create_venv(venv, with_pip=bool(install), cache_dir=cache_dir)
        if install:
            env = base_env(environ, str(venv) if python else None)
            env.update(env_vars)
            run_install(install, cwd=root / "app", env=env, emit=emit)
    marker.update(seconds=round(time.monotonic() - started, 3), at=time.time())
    settle_modes(str(root), str(cache_dir))
    write_marker(root / READY, marker)
    emit("system", f"bundle {sha256[:12]}: ready in {marker['seconds']}s")

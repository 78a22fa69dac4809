"""Bootstrap a version bundle on this machine: fetch, verify, unpack, create the venv, run `install`.

The story, once per bundle hash: take an exclusive file lock beside the cache folder (a second instance
of the same version waits here), and if the folder is not yet complete, clear any half-done attempt,
fetch the bundle from the artifact store (which verifies its sha256), unpack it safely, create a
virtualenv, run the app's `install` command in the unpacked folder, and write the `.ready` marker last.
The marker is the only proof of a complete folder, so an install that crashed is simply done again.
A later instance finds the marker without taking the lock and starts at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from sprout.agent.cache import READY, Prepared, cache_root, cached
from sprout.agent.pump import pump_lines
from sprout.errors import BundleError, SproutError, UserError

#: Called with (stream, message) for every line worth keeping: stream is stdout, stderr or system.
Emit = Callable[[str, str], None]


class InstallError(UserError):
    """The app's `install` command failed."""


def prepare(
    *,
    sha256: str,
    store_url: str,
    cache_dir: Path,
    install: str | None,
    install_env: Mapping[str, str],
    emit: Emit,
) -> Prepared:
    """A complete cache folder for bundle `sha256`, bootstrapping it first if no instance has yet."""
    ready = cached(str(cache_dir), sha256)
    if ready is not None:
        return ready
    root = Path(cache_root(str(cache_dir), sha256))
    cache_dir.mkdir(parents=True, exist_ok=True)
    with open(cache_dir / f"{sha256}.lock", "a+b") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            emit("system", f"bundle {sha256[:12]}: another instance is bootstrapping it; waiting")
            fcntl.flock(lock, fcntl.LOCK_EX)
        ready = cached(str(cache_dir), sha256)
        if ready is not None:
            return ready
        _bootstrap(root, sha256, store_url, install, install_env, emit)
    return Prepared(str(root), cached=False)


def _bootstrap(
    root: Path, sha256: str, store_url: str, install: str | None, install_env: Mapping[str, str], emit: Emit
) -> None:
    """Build the cache folder from nothing; the caller holds the bundle's lock."""
    started = time.monotonic()
    if root.exists():
        emit("system", f"bundle {sha256[:12]}: removing an incomplete earlier bootstrap")
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
    venv = root / "venv"
    _create_venv(venv, with_pip=bool(install))
    if install:
        emit("system", f"install: {install}")
        env = dict(install_env)
        code = run_command(install, cwd=root / "app", env=env, emit=emit)
        if code != 0:
            raise InstallError(
                f"install command {install!r} exited with code {code}; see the lines above in this "
                "instance's log, fix the command or the app's requirements, and push a new version"
            )
    marker = {"sha256": sha256, "seconds": round(time.monotonic() - started, 3), "at": time.time()}
    _write_marker(root / READY, marker)
    emit("system", f"bundle {sha256[:12]}: ready in {marker['seconds']}s")


def _create_venv(venv: Path, *, with_pip: bool) -> None:
    """Create an isolated virtualenv; with pip only when an `install` command may need it (pip costs ~3 s)."""
    command = [sys.executable, "-m", "venv", str(venv)]
    if not with_pip:
        command.insert(3, "--without-pip")
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SproutError(
            f"cannot create the virtualenv {venv}: {result.stderr.strip() or result.stdout.strip()}; "
            "check that Python's venv module (and ensurepip) is installed on this machine"
        )


def run_command(command: str, *, cwd: Path, env: Mapping[str, str], emit: Emit) -> int:
    """Run `command` through `sh -c` in its own process group, logging its output; return its exit code."""
    if not cwd.is_dir():
        raise BundleError(f"{cwd}: the unpacked bundle folder is missing; delete the cache folder and retry")
    proc = subprocess.Popen(
        ["sh", "-c", command],
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        process_group=0,
    )
    threads = pump_lines(proc, emit)
    try:
        code = proc.wait()
    finally:
        # Whatever happens to us (a stop signal mid-install), the command's whole group goes too.
        _kill_group(proc.pid)
        proc.wait()
    for thread in threads:
        thread.join(timeout=2.0)
    return code


def _kill_group(pgid: int) -> None:
    """SIGKILL a process group that may already be gone."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _write_marker(path: Path, data: Mapping[str, object]) -> None:
    """Write the completion marker durably: contents synced before the name appears."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)

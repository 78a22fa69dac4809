"""The steps a bootstrap is made of: create a virtualenv, run a command of the bundle, write a marker."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from sprout.agent.pump import pump_lines
from sprout.errors import BundleError, SproutError, UserError

#: Called with (stream, message) for every line worth keeping: stream is stdout, stderr or system.
Emit = Callable[[str, str], None]


class InstallError(UserError):
    """The app's `install` command failed, or its declared inputs are not in the bundle."""


@contextlib.contextmanager
def exclusive_lock(path: Path, on_wait: Callable[[], None]) -> Iterator[None]:
    """Hold an exclusive `flock` on the file `path`; `on_wait` is called once if another holder makes us wait."""
    waited = False
    while True:
        with open(path, "a+b") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if not waited:
                    on_wait()
                    waited = True
                fcntl.flock(lock, fcntl.LOCK_EX)
            # Housekeeping unlinks the lock file of what it removes while holding it: a lock on that
            # unlinked file guards nothing anymore, so take the file now at `path` instead.
            held = os.fstat(lock.fileno())
            try:
                current = os.stat(path)
            except FileNotFoundError:
                continue
            if (held.st_dev, held.st_ino) == (current.st_dev, current.st_ino):
                yield
                return


#: The folder of the cache where virtualenv keeps its unpacked seed wheels (pip, setuptools) and what it
#: learnt of each interpreter, so that a venv with pip is made by copying instead of installing.
VIRTUALENV_DATA = "virtualenv"


def create_venv(venv: Path, *, with_pip: bool, cache_dir: Path) -> None:
    """Create an isolated virtualenv; with pip (and setuptools) only when an `install` command may need it."""
    if with_pip:
        # virtualenv (PyPA) rather than `python -m venv`: ensurepip installs pip anew into every venv
        # (about 5 s of CPU), virtualenv copies it from the unpacked wheels it keeps in the cache (0.5 s).
        # No periodic update: it would look for newer seed wheels on the network in the background.
        command = [sys.executable, "-m", "virtualenv", "--quiet", "--python", venv_python()]
        command += ["--app-data", str(cache_dir / VIRTUALENV_DATA), "--no-periodic-update", "--no-vcs-ignore"]
        # Only these flags decide what is made: no user's virtualenv.ini, no VIRTUALENV_* of the machine.
        env = {k: v for k, v in os.environ.items() if not k.startswith("VIRTUALENV_")}
        env["VIRTUALENV_CONFIG_FILE"] = os.devnull
    else:
        command, env = [venv_python(), "-m", "venv", "--without-pip"], None
    result = subprocess.run([*command, str(venv)], capture_output=True, text=True, check=False, env=env)
    if result.returncode != 0:
        raise SproutError(
            f"cannot create the virtualenv {venv}: {result.stderr.strip() or result.stdout.strip()}; "
            "check that Python's venv module is installed on this machine"
        )


def venv_python() -> str:
    """The interpreter virtualenvs are made from: Sprout's own, or under root (whose apps run as users of
    their own) one that every user can run, Sprout's own if it is."""
    if os.geteuid() != 0:
        return sys.executable
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    own = os.path.realpath(getattr(sys, "_base_executable", sys.executable))
    candidates = [own, *(os.path.join(folder, version) for folder in ("/usr/local/bin", "/usr/bin"))]
    for candidate in candidates:
        real = os.path.realpath(candidate)
        # The interpreter and its standard library (beside it, under its prefix) must be reachable.
        if (
            os.path.isfile(real)
            and _reachable_by_all(real)
            and _reachable_by_all(os.path.dirname(os.path.dirname(real)))
        ):
            return real
    raise SproutError(
        f"no {version} that app users can run: Sprout's own ({own}) is in a folder other users cannot "
        f"enter; install {version} system-wide (e.g. /usr/bin/{version} with its venv module)"
    )


def _reachable_by_all(path: str) -> bool:
    """Whether any user can reach `path`: every folder on the way is searchable by others."""
    parts = path.split(os.sep)
    for depth in range(2, len(parts) + 1):
        mode = os.stat(os.sep.join(parts[:depth]) or os.sep).st_mode
        if not mode & 0o001:
            return False
    return True


def run_install(install: str, *, cwd: Path, env: Mapping[str, str], emit: Emit) -> None:
    """Run the app's `install` command; raise InstallError when it fails."""
    emit("system", f"install: {install}")
    code = run_command(install, cwd=cwd, env=env, emit=emit)
    if code != 0:
        raise InstallError(
            f"install command {install!r} exited with code {code}; see the lines above in this "
            "instance's log, fix the command or the app's requirements, and push a new version"
        )


#: The group leader of a command: the command runs as its child, and when the caller dies (a `kill -9` of
#: the daemon mid-migration) the parent-death signal (util-linux's setpriv, Essential in Debian) makes the
#: leader kill the whole group, so no migration or test outlives it to run beside the next one.
_GROUP_DIES_WITH_CALLER = 'trap "kill -KILL 0" TERM; sh -c "$1" & wait $!'
#: How often a command that may be stopped checks whether it is.
STOP_POLL = 0.25


def run_command(
    command: str,
    *,
    cwd: Path,
    env: Mapping[str, str],
    emit: Emit,
    user: tuple[int, int] | None = None,
    stop: threading.Event | None = None,
) -> int:
    """Run `command` through `sh -c` in its own process group (as `user`: uid and gid, when given),
    logging its output; return its exit code. The group dies with the thread that runs it, or once
    `stop` is set (its code is then -9)."""
    if not cwd.is_dir():
        raise BundleError(f"{cwd}: the unpacked bundle folder is missing; delete the cache folder and retry")
    proc = subprocess.Popen(
        ["setpriv", "--pdeathsig", "TERM", "--", "sh", "-c", _GROUP_DIES_WITH_CALLER, "sprout", command],
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        process_group=0,
        user=user[0] if user is not None else None,
        group=user[1] if user is not None else None,
        extra_groups=[] if user is not None else None,
    )
    threads = pump_lines(proc, emit)
    try:
        code = _wait(proc, stop)
    finally:
        # Whatever happens to us (a stop signal mid-install), the command's whole group goes too.
        _kill_group(proc.pid)
        proc.wait()
    for thread in threads:
        thread.join(timeout=2.0)
    return code


def _wait(proc: subprocess.Popen[bytes], stop: threading.Event | None) -> int:
    """`proc`'s exit code; once `stop` is set, its group is killed first."""
    while stop is not None:
        try:
            return proc.wait(STOP_POLL)
        except subprocess.TimeoutExpired:
            if stop.is_set():
                _kill_group(proc.pid)
                return proc.wait()
    return proc.wait()


def _kill_group(pgid: int) -> None:
    """SIGKILL a process group that may already be gone."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def write_marker(path: Path, data: Mapping[str, object]) -> None:
    """Write a completion marker durably: contents synced before the name appears."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)

"""Who an app runs as: under a root agent, an unprivileged user of its own per app, created on demand.

A root agent runs the app's `web` command as `sprout-<app>`: a system user with no home folder and no
login shell, created with `useradd --system` the first time an instance of the app starts. That user
cannot enter the Sprout home (0700, root's), so it reads neither the API nor the router token, and it
cannot read another app's `/proc/<pid>/environ` (the kernel shows a process's environment to its own
user only). What it needs is shared with it: the bundle cache (code and virtualenvs, never secrets) is
made readable by others, and its HOME and TMPDIR are a folder of its own in the cache. Without root
there is no one to switch to, and the app runs as the agent's user.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import pwd
import stat
import subprocess
import time

from sprout.errors import SproutError

USER_PREFIX = "sprout-"
#: The longest user name `useradd` accepts on Linux.
MAX_NAME = 32
#: The cache folder that holds one HOME (and TMPDIR) folder per app user.
HOMES = "users"
#: The folder in an app user's HOME folder that holds the HOME and TMPDIR of each of its instances.
INSTANCES = "instances"
#: How long a start waits for a `useradd` that another instance of the same app is running.
CREATE_TIMEOUT = 30.0


class AppUser:
    """The unprivileged user an app runs as, and its writable folder (a plain class: the agent imports
    it before every app start, and dataclasses cost import time)."""

    __slots__ = ("gid", "home", "name", "uid")

    def __init__(self, name: str, uid: int, gid: int, home: str) -> None:
        self.name = name
        self.uid = uid
        self.gid = gid
        self.home = home


def user_name(app: str) -> str:
    """`sprout-<app>`; a long app name is cut and given a hash suffix to fit 32 characters."""
    name = USER_PREFIX + app
    if len(name) <= MAX_NAME:
        return name
    suffix = hashlib.sha256(app.encode()).hexdigest()[:8]
    return f"{USER_PREFIX}{app[: MAX_NAME - len(USER_PREFIX) - len(suffix) - 1]}-{suffix}"


def ensure_user(name: str, cache_dir: str) -> AppUser:
    """System user `name` (created if missing) and its HOME folder in the cache; the caller is root."""
    homes = os.path.join(cache_dir, HOMES)
    os.makedirs(homes, mode=0o711, exist_ok=True)
    os.chmod(homes, 0o711)
    entry = _lookup(name) or _create(name, os.path.join(homes, ".useradd.lock"))
    home = os.path.join(homes, name)
    with contextlib.suppress(FileExistsError):
        os.mkdir(home, 0o700)
    os.chown(home, entry.pw_uid, entry.pw_gid)
    os.chmod(home, 0o700)
    return AppUser(name=name, uid=entry.pw_uid, gid=entry.pw_gid, home=home)


def settle_modes(path: str, cache_dir: str) -> None:
    """Give `path`'s tree (a bundle's cache folder or dependency layer) the modes its readers need: under
    root, readable by every app user and reachable from `cache_dir`; otherwise the user's alone, like
    everything else Sprout writes (unpacking keeps a bundle's 0644/0755)."""
    shared = os.geteuid() == 0
    folder_mode, exec_mode, file_mode = (0o755, 0o755, 0o644) if shared else (0o700, 0o700, 0o600)
    for folder, _, files in os.walk(path):
        os.chmod(folder, folder_mode)
        for name in files:
            full = os.path.join(folder, name)
            mode = os.lstat(full).st_mode
            if stat.S_ISREG(mode):
                os.chmod(full, exec_mode if mode & stat.S_IXUSR else file_mode)
    if not shared:
        return
    parent = os.path.dirname(os.path.abspath(path))
    top = os.path.abspath(cache_dir)
    while parent.startswith(top):
        os.chmod(parent, os.lstat(parent).st_mode & 0o7777 | 0o711)
        if parent == top:
            break
        parent = os.path.dirname(parent)


def _lookup(name: str) -> pwd.struct_passwd | None:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        return None


def _create(name: str, lock_path: str) -> pwd.struct_passwd:
    """Create system user `name` (one `useradd` at a time on this machine, retried while passwd is busy)."""
    command = ["useradd", "--system", "--no-create-home", "--user-group"]
    command += ["--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", name]
    deadline = time.monotonic() + CREATE_TIMEOUT
    fd = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        while True:
            entry = _lookup(name)
            if entry is not None:
                return entry
            try:
                result = subprocess.run(command, capture_output=True, text=True, check=False)
            except OSError as exc:
                raise SproutError(
                    f"cannot create user {name} to run the app as: {exc}; install useradd (passwd package) "
                    f"or create the user yourself: {' '.join(command)}"
                ) from exc
            entry = _lookup(name)
            if entry is not None:
                return entry
            if time.monotonic() > deadline:
                raise SproutError(
                    f"cannot create user {name} to run the app as: useradd exited {result.returncode}: "
                    f"{result.stderr.strip()}; create it yourself: {' '.join(command)}"
                )
            time.sleep(0.2)
    finally:
        os.close(fd)

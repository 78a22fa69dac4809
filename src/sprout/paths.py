"""Where Sprout keeps its files under SPROUT_HOME (default ~/.sprout): the one map of the layout."""

from __future__ import annotations

import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

from sprout.errors import UserError

#: Bits no file or folder Sprout writes under its home grants to group or others.
PRIVATE_UMASK = 0o077
#: The cache folder (in the shared cache) of a root Sprout, whose apps run as other users.
APP_USERS_CACHE = "app-users"


@dataclass(frozen=True)
class Home:
    """The folders and files of one SPROUT_HOME."""

    root: Path
    shared_cache: Path | None = None

    @classmethod
    def from_env(cls) -> Home:
        """The home named by $SPROUT_HOME (else ~/.sprout); $SPROUT_CACHE_DIR shares the bundle cache."""
        root = Path(os.environ.get("SPROUT_HOME") or Path.home() / ".sprout").expanduser().resolve()
        shared = os.environ.get("SPROUT_CACHE_DIR")
        return cls(root, Path(shared).expanduser().resolve() if shared else None)

    def ensure(self) -> Home:
        """Create the home's folders private to the user, tighten an existing home that others could read
        (with a notice on stderr), make every file this process and its children write private (umask
        077), and return self."""
        os.umask(os.umask(PRIVATE_UMASK) | PRIVATE_UMASK)
        folders = [self.root, self.artifacts, self.instances, self.envs, self.run, self.logs]
        if self.cache.is_relative_to(self.root):
            folders.append(self.cache)
        else:
            _ensure_app_side(self.cache)
        loose = [(folder, mode) for folder in folders if (mode := _mode(folder)) is not None and mode & 0o077]
        for folder in folders:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        if loose:
            folder, mode = loose[0]
            tightened = _tighten(self.root)
            print(
                f"notice: {folder} was open to other users (mode {mode:04o}); made the home {self.root} "
                f"owner-only: {tightened} entries changed (folders 0700, files 0600)",
                file=sys.stderr,
            )
        return self

    @property
    def state_db(self) -> Path:
        """The state store (SQLite, WAL)."""
        return self.root / "state.db"

    @property
    def log_db(self) -> Path:
        """The central log store (SQLite + FTS5)."""
        return self.root / "logs.db"

    @property
    def tls(self) -> Path:
        """The router's certificates and pending ACME challenges (`sprout.router.certs`), the ACME account."""
        return self.root / "tls"

    @property
    def artifacts(self) -> Path:
        """The default folder artifact store."""
        return self.root / "artifacts"

    @property
    def instances(self) -> Path:
        """One folder per instance: its spec, its pid record, its log file."""
        return self.root / "instances"

    @property
    def envs(self) -> Path:
        """One folder per app environment: SQLite database and session store, resources' data."""
        return self.root / "envs"

    @property
    def cache(self) -> Path:
        """Unpacked bundles and their virtualenvs, one folder per bundle hash (content-addressed and
        locked per hash, so several homes may share one: $SPROUT_CACHE_DIR).

        Under root, apps run as users of their own who read their bundle but cannot enter the home: the
        cache is then `app-users/` in $SPROUT_CACHE_DIR, else `cache/` in the apps folder."""
        if os.geteuid() != 0:
            return self.shared_cache or self.root / "cache"
        return self.shared_cache / APP_USERS_CACHE if self.shared_cache else self.apps / "cache"

    @property
    def apps(self) -> Path:
        """Under root, what apps running as users of their own may enter (the bundle cache, their HOME
        and SQLite folders): `<home>-apps`, beside the home, which stays 0700."""
        return self.root.with_name(self.root.name + "-apps")

    def app_data_dir(self, app: str, env: str) -> Path:
        """Where an app environment's embedded SQLite database and session store live: the environment's
        folder, or under root (its app runs as another user) a folder of that user in the apps folder."""
        if os.geteuid() != 0:
            return self.env_dir(app, env)
        return self.apps / "envs" / app / env

    @property
    def run(self) -> Path:
        """Pid files, tokens and the router's persisted table."""
        return self.root / "run"

    @property
    def logs(self) -> Path:
        """Log files of the daemon and the router (instances log into their own folders)."""
        return self.root / "logs"

    @property
    def router_access_log(self) -> Path:
        """The router's notable requests (errors, slow ones); its access files are in `access/` beside it."""
        return self.logs / "router-access.log"

    @property
    def token_file(self) -> Path:
        """The control-plane API token (mode 0600)."""
        return self.run / "api.token"

    def instance_dir(self, instance_id: str) -> Path:
        """The folder of one instance."""
        return self.instances / instance_id

    def env_dir(self, app: str, env: str) -> Path:
        """The data folder of one app environment."""
        return self.envs / app / env


def _mode(path: Path) -> int | None:
    """The permission bits of `path`, or None when it does not exist."""
    try:
        return stat.S_IMODE(os.lstat(path).st_mode)
    except FileNotFoundError:
        return None


def _tighten(root: Path) -> int:
    """Take group and others' bits off everything under `root` (symlinks untouched); how many changed."""
    changed = 0
    for folder, dirs, files in os.walk(root):
        for path in [folder, *(os.path.join(folder, name) for name in dirs + files)]:
            mode = os.lstat(path).st_mode
            if stat.S_ISLNK(mode) or not mode & PRIVATE_UMASK:
                continue
            os.chmod(path, stat.S_IMODE(mode) & ~PRIVATE_UMASK)
            changed += 1
    return changed


def _ensure_app_side(cache: Path) -> None:
    """Create the cache outside the home (and its parent, the apps folder or the shared cache) so that app
    users can enter it but only this user can change it; refuse one that another user owns or may write
    (it could hold code that then runs as an app)."""
    for folder in (cache.parent, cache):
        folder.mkdir(parents=True, exist_ok=True, mode=0o711)
        info = os.lstat(folder)
        if stat.S_ISLNK(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o022:
            raise UserError(
                f"{folder}: the bundle cache must be a folder of this user that no one else may write "
                f"(it is owned by uid {info.st_uid}, mode {stat.S_IMODE(info.st_mode):04o}); remove it, "
                "or set SPROUT_CACHE_DIR to a folder of your own"
            )
        os.chmod(folder, stat.S_IMODE(info.st_mode) | 0o711)


def write_private(path: Path, data: bytes) -> None:
    """Replace `path` with `data` atomically and durably (temp file, fsync, rename, fsync the folder), mode 0600."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)

"""Where Sprout keeps its files under SPROUT_HOME (default ~/.sprout): the one map of the layout."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


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
        """Create the home's folders (private to the user) and return self."""
        for folder in (self.root, self.artifacts, self.instances, self.envs, self.cache, self.run, self.logs):
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
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
        locked per hash, so several homes may share one: $SPROUT_CACHE_DIR)."""
        return self.shared_cache or self.root / "cache"

    @property
    def run(self) -> Path:
        """Pid files, tokens and the router's persisted table."""
        return self.root / "run"

    @property
    def logs(self) -> Path:
        """Log files of the daemon and the router (instances log into their own folders)."""
        return self.root / "logs"

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

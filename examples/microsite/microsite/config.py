"""Settings from the environment Sprout gives every instance (the app contract), with local defaults."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    """What one running instance knows about itself and its backing services."""

    app: str
    env: str
    version: str
    instance: str
    zone: str
    database_url: str
    session_store_url: str | None
    static_max_age: int

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        """Read the SPROUT_* variables, DATABASE_URL and SESSION_STORE_URL."""
        return cls(
            app=environ.get("SPROUT_APP", "microsite"),
            env=environ.get("SPROUT_ENV", "local"),
            version=environ.get("SPROUT_VERSION", "dev"),
            instance=environ.get("SPROUT_INSTANCE", "local"),
            zone=environ.get("SPROUT_ZONE", "-"),
            database_url=environ.get("DATABASE_URL", "sqlite:///microsite.sqlite3"),
            session_store_url=environ.get("SESSION_STORE_URL") or None,
            static_max_age=int(environ.get("STATIC_MAX_AGE", "86400")),
        )

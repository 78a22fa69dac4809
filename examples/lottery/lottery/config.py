"""Settings from the environment Sprout gives every instance (the app contract), with local defaults."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    """What one running instance knows about itself, its backing services and the draw."""

    app: str
    env: str
    version: str
    instance: str
    zone: str
    database_url: str
    session_store_url: str | None
    admin_token: str | None
    prizes: int

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        """Read the SPROUT_* variables, DATABASE_URL, SESSION_STORE_URL and the lottery's own."""
        return cls(
            app=environ.get("SPROUT_APP", "lottery"),
            env=environ.get("SPROUT_ENV", "local"),
            version=environ.get("SPROUT_VERSION", "dev"),
            instance=environ.get("SPROUT_INSTANCE", "local"),
            zone=environ.get("SPROUT_ZONE", "-"),
            database_url=environ.get("DATABASE_URL", "sqlite:///lottery.sqlite3"),
            session_store_url=environ.get("SESSION_STORE_URL") or None,
            admin_token=environ.get("LOTTERY_ADMIN_TOKEN") or None,
            prizes=int(environ.get("LOTTERY_PRIZES", "3")),
        )

"""The boot configuration an instance reads at start (`/etc/sprout/boot.json`): everything but its identity."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sprout.errors import UserError


@dataclass(frozen=True)
class BootConfig:
    """What user data hands `sprout aws boot`; the instance id and zone come from the metadata service."""

    app: str
    env: str
    store_url: str
    web: str
    install: str | None
    health_path: str
    port: int
    region: str
    log_group: str
    state_dir: str = "/var/lib/sprout"
    host: str = "0.0.0.0"
    grace: float = 10.0
    env_vars: dict[str, str] = field(default_factory=dict)
    sessions: dict[str, str] | None = None
    database: dict[str, str] | None = None
    app_secret: str | None = None
    secret_names: list[str] = field(default_factory=list)
    install_inputs: list[str] | None = None
    release: str | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BootConfig:
        """The config back from its mapping."""
        return cls(**dict(data))

    @classmethod
    def load(cls, path: Path) -> BootConfig:
        """Read a boot config file; a broken one is a UserError naming the file."""
        try:
            return cls.from_json(json.loads(path.read_text()))
        except (OSError, ValueError, TypeError) as exc:
            raise UserError(f"{path}: not a Sprout boot config ({exc}); re-render the template") from exc

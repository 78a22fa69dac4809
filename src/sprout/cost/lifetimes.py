"""The cost module's input contract: when each instance ran, and what it was."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sprout.errors import UserError


@dataclass(frozen=True, slots=True)
class InstanceLifetime:
    """One instance from launch (`start`) to termination (`end`, None while it runs); epoch seconds."""

    instance_id: str
    app: str
    env: str
    version: str
    zone: str
    size: str
    start: float
    end: float | None = None

    def clipped(self, since: float, until: float) -> tuple[float, float] | None:
        """The part of the lifetime inside [since, until), or None if it lies outside."""
        begin = max(self.start, since)
        finish = until if self.end is None else min(self.end, until)
        return (begin, finish) if finish > begin else None

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> InstanceLifetime:
        """Build from a state-store row or a JSON object with the same field names."""
        try:
            return cls(
                instance_id=str(data["instance_id"]),
                app=str(data["app"]),
                env=str(data["env"]),
                version=str(data["version"]),
                zone=str(data["zone"]),
                size=str(data["size"]),
                start=float(data["start"]),
                end=None if data.get("end") is None else float(data["end"]),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise UserError(
                f"cost: an instance lifetime is incomplete or malformed ({error!r}): {dict(data)}"
            ) from None

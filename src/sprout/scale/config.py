"""The scaler's bounds: `[instances] min/max` as a frozen value.

The `[scaling]` section itself is parsed once, by `sprout.spec` (`sprout.spec.scaling.ScalingSection`):
the policies take that validated model as it is, so what `sprout validate` accepts is what the daemon runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from sprout.errors import ManifestError
from sprout.spec.models import InstancesSection


@dataclass(frozen=True, slots=True)
class Limits:
    """The fleet's bounds from `[instances] min/max`."""

    minimum: int = 1
    maximum: int = 10

    def __post_init__(self) -> None:
        if self.minimum < 0 or self.maximum < self.minimum:
            raise ManifestError(
                "sprout.toml",
                [f"instances: need 0 <= min <= max, got min={self.minimum}, max={self.maximum}"],
            )

    @classmethod
    def of(cls, instances: InstancesSection) -> Limits:
        """The bounds of a validated `[instances]` section."""
        return cls(instances.min, instances.max)

    def clamp(self, n: int) -> int:
        """`n` moved into [minimum, maximum]."""
        return max(self.minimum, min(self.maximum, n))

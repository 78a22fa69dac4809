"""Prices per instance-hour by size: defaults, and the manifest's `[cost]` section that overrides them.

The defaults are AWS EC2 On-Demand Linux prices in eu-central-1 (Frankfurt) for the burstable t3 family
that matches each size (small = t3.small 2 vCPU/2 GiB, medium = t3.medium 2 vCPU/4 GiB, large = t3.large
2 vCPU/8 GiB) from the list at https://aws.amazon.com/ec2/pricing/on-demand/ (USD per hour), written down
when this module was made (2026-11-26); Sprout never fetches prices, so check that page for today's
figures. They are a starting point: the manifest overrides them, size by size:

```toml
[cost]
currency = "EUR"
[cost.prices]
small = 0.022
xlarge = 0.18
```
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sprout.errors import ManifestError, UserError

DEFAULT_CURRENCY = "USD"
DEFAULT_PRICES: Mapping[str, float] = {"small": 0.024, "medium": 0.048, "large": 0.096}
PRICE_SOURCE = "AWS EC2 On-Demand, Linux, eu-central-1, t3.small/t3.medium/t3.large (USD per hour)"


@dataclass(frozen=True, slots=True)
class CostConfig:
    """Currency and price per instance-hour for each size."""

    currency: str = DEFAULT_CURRENCY
    prices: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_PRICES))

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None) -> CostConfig:
        """Build from the manifest's `[cost]` table; listed prices override the defaults size by size."""
        data = data or {}
        unknown = sorted(set(data) - {"currency", "prices"})
        if unknown:
            raise ManifestError(
                "sprout.toml",
                [f"cost.{key}: unknown key; known keys are currency, prices" for key in unknown],
            )
        prices = dict(DEFAULT_PRICES)
        problems = []
        for size, price in (data.get("prices") or {}).items():
            if isinstance(price, bool) or not isinstance(price, int | float) or price < 0:
                problems.append(f"cost.prices.{size}: expected a price per hour >= 0, got {price!r}")
            else:
                prices[str(size)] = float(price)
        if problems:
            raise ManifestError("sprout.toml", problems)
        return cls(currency=str(data.get("currency", DEFAULT_CURRENCY)), prices=prices)

    def hourly(self, size: str) -> float:
        """The price of one instance-hour of `size`."""
        try:
            return self.prices[size]
        except KeyError:
            known = ", ".join(sorted(self.prices))
            raise UserError(
                f"cost: no price for size {size!r} (known: {known}); add it under [cost.prices]"
            ) from None

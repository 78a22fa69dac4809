"""Prices per instance-hour by size: defaults, overridden size by size by an app's own `[cost]` section.

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

The section is parsed and checked by `sprout.spec` (`CostSection`); this module only prices.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from sprout.errors import UserError
from sprout.spec.models import CostSection

DEFAULT_CURRENCY = "USD"
DEFAULT_PRICES: Mapping[str, float] = {"small": 0.024, "medium": 0.048, "large": 0.096}
PRICE_SOURCE = "AWS EC2 On-Demand, Linux, eu-central-1, t3.small/t3.medium/t3.large (USD per hour)"


@dataclass(frozen=True, slots=True)
class CostConfig:
    """Currency and price per instance-hour for each size."""

    currency: str = DEFAULT_CURRENCY
    prices: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_PRICES))

    @classmethod
    def of(cls, section: CostSection) -> CostConfig:
        """The prices of a validated `[cost]` section: its listed prices override the defaults."""
        return cls(currency=section.currency, prices={**DEFAULT_PRICES, **section.prices})

    def hourly(self, size: str) -> float:
        """The price of one instance-hour of `size`."""
        try:
            return self.prices[size]
        except KeyError:
            known = ", ".join(sorted(self.prices))
            raise UserError(
                f"cost: no price for size {size!r} (known: {known}); add it under [cost.prices]"
            ) from None

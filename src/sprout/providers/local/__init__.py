"""The local provider: every instance is a `sprout agent` process on this machine."""

from sprout.providers.local.placement import place
from sprout.providers.local.provider import LocalProvider

__all__ = ["LocalProvider", "place"]

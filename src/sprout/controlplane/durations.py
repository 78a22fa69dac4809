"""`--since` values: a duration back from now (`10m`, `2h`) or an absolute Unix time."""

from __future__ import annotations

from sprout.errors import UserError
from sprout.spec.units import parse_duration


def parse_since(value: str, now: float) -> float:
    """The Unix time `value` names: `10m` means ten minutes before `now`; a bare number is a Unix time."""
    text = value.strip()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return now - parse_duration(text)
    except (ValueError, TypeError) as exc:
        raise UserError(f"--since {value!r}: use a duration such as 30s, 10m or 2h, or a Unix time") from exc

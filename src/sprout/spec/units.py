"""Duration and size values as written in manifests ("500ms", "2s", "10m"; "64MB")."""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from pydantic import BeforeValidator, WithJsonSchema

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
# The unit is optional: a string of digits alone is a number of bytes, as a TOML integer is.
_SIZE = re.compile(r"^\s*(?:(\d+)|(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|KiB|MiB|GiB))\s*$", re.IGNORECASE)
_SIZE_UNITS = {"b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "kib": 1024, "mib": 1024**2, "gib": 1024**3}


def parse_duration(value: Any) -> float:
    """Seconds from a duration string ("500ms", "2s", "10m", "1h", "1d") or a number of seconds."""
    if isinstance(value, bool):
        raise ValueError(f'invalid duration {value!r} (use e.g. "500ms", "2s", "10m")')
    if isinstance(value, int | float):
        try:
            seconds = float(value)
        except OverflowError:  # an integer beyond any float
            seconds = math.inf
        if not math.isfinite(seconds):
            raise ValueError(f"invalid duration {value!r}: must be a finite number of seconds")
        if seconds < 0:
            raise ValueError(f"invalid duration {value!r}: must not be negative")
        return seconds
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return float(match.group(1)) * _DURATION_UNITS[match.group(2)]
    raise ValueError(f'invalid duration {value!r} (use e.g. "500ms", "2s", "10m")')


def parse_size(value: Any) -> int:
    """Bytes from a size string ("64MB", "1GiB", "512KB"), or a number of bytes (`100` or `"100"`)."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str):
        match = _SIZE.fullmatch(value)
        if match and match.group(1) is not None:
            return int(match.group(1))
        if match:
            return int(float(match.group(2)) * _SIZE_UNITS[match.group(3).lower()])
    raise ValueError(f'invalid size {value!r} (use e.g. "64MB", "1GiB", or a number of bytes)')


def format_duration(seconds: float) -> str:
    """The shortest manifest spelling of a duration in seconds."""
    if seconds < 1 and seconds != 0:
        return f"{round(seconds * 1000)}ms"
    for unit, factor in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= factor and seconds % factor == 0:
            return f"{int(seconds // factor)}{unit}"
    return f"{seconds:g}s"


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": r"^\d+(\.\d+)?(ms|s|m|h|d)$"},
                {"type": "number", "minimum": 0},
            ],
            "description": 'A duration: "500ms", "2s", "10m", "1h" or a number of seconds.',
        }
    ),
]

Size = Annotated[
    int,
    BeforeValidator(parse_size),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": r"^\d+((\.\d+)?\s*([KMG]i?B|B))?$"},
                {"type": "integer", "minimum": 0},
            ],
            "description": 'A size: "64MB", "1GiB" or a number of bytes (100 or "100").',
        }
    ),
]

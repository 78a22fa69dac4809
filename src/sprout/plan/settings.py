"""Manifest settings as flat `section.key` paths with display values, for the plan's settings diff."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, BeforeValidator

from sprout.spec import Manifest
from sprout.spec.units import format_duration, parse_duration


def duration_paths(model: type[BaseModel] = Manifest, prefix: str = "") -> frozenset[str]:
    """Paths of every duration-valued setting (displayed as "2s" rather than 2.0)."""
    found: set[str] = set()
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        if any(isinstance(m, BeforeValidator) and m.func is parse_duration for m in field.metadata):
            found.add(path)
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            found |= duration_paths(annotation, f"{path}.")
    return frozenset(found)


_DURATIONS = duration_paths()
#: How a key without a value is shown.
UNSET = "(unset)"


def flat_settings(manifest: Manifest) -> dict[str, str]:
    """Every setting of a manifest as `path → display value` (tables flattened, lists kept whole)."""
    flat: dict[str, str] = {}
    _flatten(manifest.model_dump(mode="json"), "", flat)
    return flat


def _flatten(value: Any, path: str, out: dict[str, str]) -> None:
    if isinstance(value, dict):
        for key in sorted(value):
            _flatten(value[key], f"{path}.{key}" if path else key, out)
    else:
        out[path] = display(path, value)


def display(path: str, value: Any) -> str:
    """A value as the manifest would spell it: durations as "2s", strings quoted, None as (unset)."""
    if value is None:
        return UNSET
    if path in _DURATIONS and isinstance(value, int | float):
        return format_duration(float(value))
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list):
        # Tables in a list (schedule, step) read best with their unset keys left out, as written.
        value = [
            {k: v for k, v in item.items() if v is not None} if isinstance(item, dict) else item
            for item in value
        ]
    return json.dumps(value, ensure_ascii=False)

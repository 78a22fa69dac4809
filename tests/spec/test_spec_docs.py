"""docs/manifest.md documents every manifest key with its true default, so the reference cannot drift."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, get_args, get_origin

from pydantic import BaseModel, BeforeValidator
from pydantic_core import PydanticUndefined

from sprout.spec import Manifest
from sprout.spec.units import format_duration, parse_duration, parse_size

DOC = Path(__file__).resolve().parents[2] / "docs" / "manifest.md"
ROW = re.compile(r"^\| `([^`]+)` \| (.+?) \| (.+?) \| (.+) \|$")


def _has(field: Any, func: Any) -> bool:
    metadata = list(field.metadata) + [
        m for arg in get_args(field.annotation) for m in getattr(arg, "__metadata__", ())
    ]
    return any(isinstance(m, BeforeValidator) and m.func is func for m in metadata)


def _inner_model(annotation: Any) -> type[BaseModel] | None:
    for arg in get_args(annotation):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return None


def _size(value: int) -> str:
    for unit, factor in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if value % factor == 0:
            return f"{value // factor}{unit}"
    return str(value)


def expected_rows(model: type[BaseModel] = Manifest, prefix: str = "") -> dict[str, str]:
    """Every key path (lists as `[]`, tables of tables as `<NAME>`) → its default as the doc spells it."""
    rows: dict[str, str] = {}
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            rows |= expected_rows(annotation, f"{path}.")
            continue
        default = field.get_default(call_default_factory=True)
        if default is PydanticUndefined:
            rows[path] = "required"
        elif default is None:
            rows[path] = "unset"
        elif _has(field, parse_duration):
            rows[path] = f'`"{format_duration(float(default))}"`'
        elif _has(field, parse_size):
            rows[path] = f'`"{_size(default)}"`'
        elif isinstance(default, float) and default.is_integer():
            rows[path] = f"`{int(default)}`"
        else:
            rows[path] = f"`{json.dumps(default)}`"
        inner = _inner_model(annotation)
        if inner is not None:
            origin = get_origin(annotation)
            sub = {list: f"{path}[].", dict: f"{path}.<NAME>."}.get(origin, f"{path}.")
            rows |= expected_rows(inner, sub)
    return rows


def documented_rows() -> dict[str, str]:
    rows: dict[str, str] = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        match = ROW.match(line)
        if match and not match.group(1).startswith("sprout "):
            path, default = match.group(1), match.group(3)
            assert path not in rows, f"{path} documented twice"
            rows[path] = default
    return rows


def test_every_key_is_documented_and_nothing_else() -> None:
    expected, documented = expected_rows(), documented_rows()
    assert sorted(expected.keys() - documented.keys()) == [], "keys missing from docs/manifest.md"
    assert sorted(documented.keys() - expected.keys()) == [], (
        "docs/manifest.md documents keys that do not exist"
    )


def test_documented_defaults_are_the_real_defaults() -> None:
    expected, documented = expected_rows(), documented_rows()
    wrong = {
        path: (documented[path], default) for path, default in expected.items() if documented[path] != default
    }
    assert wrong == {}


def test_every_row_has_a_meaning() -> None:
    for line in DOC.read_text(encoding="utf-8").splitlines():
        match = ROW.match(line)
        if match:
            assert len(match.group(4).strip()) > 10, line

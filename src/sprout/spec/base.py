"""The base for every manifest section: strict (unknown keys are errors), immutable, and holding no value
that the processes it configures could not be given: no NUL in any string, no infinite or NaN number."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator


def quoted(text: str) -> str:
    """`text` in double quotes for an error message, a newline or another control character escaped (it
    would split the message's line); a plain name reads as it was written."""
    return json.dumps(text, ensure_ascii=False)


def nul_problem(text: str) -> str:
    """The refusal of a string that holds a NUL character, which the C strings of argv, environ and file
    names end at: subprocess and open() raise on it, so every instance would fail to start."""
    return (
        f"{text!r} holds a NUL character (\\x00), which no command, file name or environment variable "
        "can carry; remove it"
    )


def refuse_nul(value: str, info: ValidationInfo) -> str:
    """`value` unchanged, unless it holds a NUL character in new input (see `nul_problem`)."""
    if "\0" in value and not is_stored(info):
        raise ValueError(nul_problem(value))
    return value


def is_stored(info: ValidationInfo) -> bool:
    """Whether the manifest is read back from the state store: a manifest an older Sprout recorded keeps
    its environment readable, while new input is held to every rule added since."""
    return bool(info.context and info.context.get("stored"))


def _first_nul(value: Any) -> str | None:
    """The first string inside `value` (itself, a list item, a table key or value) that holds a NUL."""
    if isinstance(value, str):
        return value if "\0" in value else None
    if isinstance(value, list | tuple):
        items: list[Any] = list(value)
    elif isinstance(value, dict):
        items = [part for pair in value.items() for part in pair]
    else:
        return None  # numbers, booleans, times, and sections (which check their own fields)
    for item in items:
        found = _first_nul(item)
        if found is not None:
            return found
    return None


class Section(BaseModel):
    """A manifest table: unknown keys rejected, values frozen after loading."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True, allow_inf_nan=False)

    @field_validator("*")
    @classmethod
    def _no_nul(cls, value: Any, info: ValidationInfo) -> Any:
        found = _first_nul(value)
        if found is not None and not is_stored(info):
            raise ValueError(nul_problem(found))
        return value

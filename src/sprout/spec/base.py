"""The base for every manifest section: strict (unknown keys are errors) and immutable."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """A manifest table: unknown keys rejected, values frozen after loading."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

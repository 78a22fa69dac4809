"""The manifest: models, loading, defaults, and validation errors with field paths."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from sprout.spec.source import MANIFEST_NAME, manifest_path

if TYPE_CHECKING:
    from sprout.spec.load import (
        DATABASE_PASSWORD,
        SESSIONS_PASSWORD,
        load_manifest,
        parse_manifest,
        resolve_secrets,
        secret_keys,
    )
    from sprout.spec.models import Manifest

__all__ = [
    "DATABASE_PASSWORD",
    "MANIFEST_NAME",
    "SESSIONS_PASSWORD",
    "Manifest",
    "load_manifest",
    "manifest_path",
    "parse_manifest",
    "resolve_secrets",
    "secret_keys",
]

#: Names that need the pydantic models, imported on first use: `sprout.spec.source` and `units`
#: work without them (a CLI command that needs no validation starts faster).
_MODELS = {
    "Manifest": "sprout.spec.models",
    "load_manifest": "sprout.spec.load",
    "parse_manifest": "sprout.spec.load",
    "resolve_secrets": "sprout.spec.load",
    "secret_keys": "sprout.spec.load",
    "DATABASE_PASSWORD": "sprout.spec.load",
    "SESSIONS_PASSWORD": "sprout.spec.load",
}


def __getattr__(name: str) -> Any:
    """The model-backed names, loaded when first asked for."""
    module = _MODELS.get(name)
    if module is None:
        raise AttributeError(f"module 'sprout.spec' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)

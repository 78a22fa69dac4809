"""The manifest: models, loading, defaults, and validation errors with field paths."""

from sprout.spec.load import MANIFEST_NAME, load_manifest, manifest_path, parse_manifest, resolve_secrets
from sprout.spec.models import Manifest

__all__ = ["MANIFEST_NAME", "Manifest", "load_manifest", "manifest_path", "parse_manifest", "resolve_secrets"]

"""A manifest file as bytes on disk: where it is, and the key its validated form is reused by.

Validating a manifest needs the pydantic models, whose import is most of a CLI command's start-up.
Validation is a pure function of the file's bytes and of the code that validates them, so a push whose
`sprout.toml` is byte-identical to one validated before (the usual code-only release) reuses that
result, found in the state store by `source_key`. Nothing here imports pydantic.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
from pathlib import Path

from sprout.errors import UserError

MANIFEST_NAME = "sprout.toml"


def manifest_path(app_dir: Path) -> Path:
    """The manifest of an app folder (or the file itself when given a file)."""
    return app_dir if app_dir.is_file() else app_dir / MANIFEST_NAME


def existing_manifest(app_dir: Path) -> Path:
    """The manifest of an app folder; a UserError naming the folder or the file when it is not there."""
    path = manifest_path(app_dir)
    if not path.parent.is_dir():
        raise UserError(f"{path.parent}: no such folder (give the app's folder, the one with sprout.toml)")
    if not path.exists():
        raise UserError(f"{path}: no manifest here (create one with `sprout init`)")
    return path


def source_key(raw: bytes) -> str:
    """A sha256 of a manifest's bytes and of the validating code: equal keys validate to equal manifests."""
    return hashlib.sha256(_validator_fingerprint().encode() + b"\0" + raw).hexdigest()


@functools.cache
def _validator_fingerprint() -> str:
    """The models' source files and pydantic's version: a changed model must not reuse an old result."""
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    # pydantic's version module names its own version and the one pydantic-core it accepts; reading it
    # is much cheaper than importing pydantic or scanning the installed distributions' metadata.
    spec = importlib.util.find_spec("pydantic")
    if spec is None or spec.origin is None:
        raise RuntimeError("pydantic is not installed")
    digest.update((Path(spec.origin).parent / "version.py").read_bytes())
    return digest.hexdigest()

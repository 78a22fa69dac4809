"""Content hashes for bundles: sha256 of a file's bytes, and the shape of a valid hash."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from sprout.errors import BundleError

CHUNK = 1024 * 1024
_SHA256 = re.compile(r"[0-9a-f]{64}")


def sha256_file(path: Path) -> str:
    """The hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def check_sha256(value: str) -> str:
    """Return `value` if it is a lowercase hex sha256, else raise BundleError."""
    if not _SHA256.fullmatch(value):
        raise BundleError(
            f"{value!r} is not a sha256 (64 lowercase hex digits); use the hash `sprout push` printed"
        )
    return value

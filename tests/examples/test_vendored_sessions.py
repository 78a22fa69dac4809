"""The examples vendor `sprout.runtime.sessions` (they must run without sprout installed): copies may not drift."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "src" / "sprout" / "runtime" / "sessions.py"


@pytest.mark.parametrize(
    "copy", ["examples/microsite/microsite/_sessions.py", "examples/lottery/lottery/_sessions.py"]
)
def test_vendored_copy_is_byte_identical(copy: str) -> None:
    assert (ROOT / copy).read_bytes() == SOURCE.read_bytes(), (
        f"refresh it: cp {SOURCE.relative_to(ROOT)} {copy}"
    )


def test_the_session_module_needs_nothing_but_the_stdlib_at_import() -> None:
    allowed = {"__future__", "asyncio", "base64", "hashlib", "hmac", "json", "logging", "os", "secrets"}
    allowed |= {"sqlite3", "threading", "time", "collections", "dataclasses", "typing", "redis", "pymemcache"}
    imported = set()
    for line in SOURCE.read_text().splitlines():
        words = line.split()
        if words[:1] in (["import"], ["from"]):
            imported.add(words[1].split(".")[0])
    assert imported <= allowed, imported - allowed

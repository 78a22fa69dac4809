"""Identifiers Sprout hands out: instance ids ("i-" + 10 hex digits)."""

from __future__ import annotations

import secrets


def new_instance_id() -> str:
    """A fresh random instance id such as `i-3f9a0c12be`."""
    return "i-" + secrets.token_hex(5)

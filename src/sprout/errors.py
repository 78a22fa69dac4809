"""Sprout's exception hierarchy: one root, subclasses per kind of failure, CLI exit codes."""

from __future__ import annotations


class SproutError(Exception):
    """Root of every error Sprout raises on purpose; the message names place, problem and next step."""

    exit_code = 1


class TestsFailed(SproutError):
    """A version's own tests failed (the test gate): it is not released."""


class UserError(SproutError):
    """The user's input is wrong (manifest, arguments, bundle); exit code 2."""

    exit_code = 2


class ManifestError(UserError):
    """A manifest is invalid; `errors` lists every problem with its field path."""

    def __init__(self, path: str, errors: list[str]) -> None:
        self.path = path
        self.errors = errors
        super().__init__("\n".join(f"{path}: {error}" for error in errors))


class BundleError(UserError):
    """A bundle is corrupt, hostile or does not match its hash."""


class NotFoundError(UserError):
    """A named thing (app, environment, version, instance) does not exist."""


class ConflictError(SproutError):
    """An operation conflicts with one in progress (for example a release lock)."""

    exit_code = 3


class ServiceError(SproutError):
    """A backing service or process Sprout depends on is missing or failed."""

    exit_code = 4


class AuthError(SproutError):
    """A call to an API lacked a valid token."""

    exit_code = 5

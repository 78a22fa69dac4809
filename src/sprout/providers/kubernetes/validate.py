"""Rendered objects checked offline against the published Kubernetes JSON schemas (kubernetes-validate)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]

from sprout.errors import UserError

#: The Kubernetes version objects are validated for unless told otherwise (schemas ship in the package).
KUBERNETES_VERSION = "1.33"


@dataclass(frozen=True)
class Problem:
    """One object that does not validate: which, where in it, and why."""

    kind: str
    name: str
    path: str
    message: str

    def __str__(self) -> str:
        where = f" at {self.path}" if self.path else ""
        return f"{self.kind}/{self.name}{where}: {self.message}"


def supported_versions() -> list[str]:
    """The Kubernetes versions (major.minor) the installed schemas cover, oldest first."""
    versions: list[str] = kubernetes_validate.utils.all_versions()
    return list(dict.fromkeys(".".join(version.split(".")[:2]) for version in versions))


def check_version(version: str) -> str:
    """`version` as major.minor if the schemas cover it; otherwise a UserError listing the ones they do."""
    wanted = ".".join(version.removeprefix("v").split(".")[:2])
    known = supported_versions()
    if wanted not in known:
        raise UserError(
            f"kubernetes validate: no schemas for Kubernetes {version!r} (choose {known[0]} to {known[-1]})"
        )
    return wanted


def validate_object(
    obj: dict[str, Any], version: str = KUBERNETES_VERSION, strict: bool = True
) -> Problem | None:
    """The first schema violation of one object (strict: unknown fields are errors too), or None."""
    kind = str(obj.get("kind", "?"))
    name = str(obj.get("metadata", {}).get("name", "?"))
    try:
        kubernetes_validate.validate(obj, version, strict=strict)
    except kubernetes_validate.ValidationError as exc:
        path = ".".join(str(part) for part in exc.absolute_path)
        return Problem(kind, name, path, str(exc.message))
    except (
        kubernetes_validate.SchemaNotFoundError,
        kubernetes_validate.utils.VersionNotSupportedError,
    ) as exc:
        return Problem(kind, name, "", str(exc.message))
    return None


def validate_objects(
    objects: Iterable[dict[str, Any]], version: str = KUBERNETES_VERSION, strict: bool = True
) -> list[Problem]:
    """Every object's problem, in order; an empty list means all of them validate."""
    return [problem for obj in objects if (problem := validate_object(obj, version, strict)) is not None]

"""Checks of policy scanners (checkov) a resource deliberately does not meet, each with its reason.

The reasons live in the resource's Metadata, where a reviewer of the template reads them and checkov
honours them; nothing is skipped anywhere else.
"""

from __future__ import annotations

from troposphere import AWSObject


def skip_checks(resource: AWSObject, reasons: dict[str, str]) -> None:
    """Record on `resource` that it skips these checks (id → one-line reason)."""
    metadata = dict(getattr(resource, "Metadata", None) or {})
    checkov = dict(metadata.get("checkov", {}))
    skips = [*checkov.get("skip", []), *({"id": i, "comment": r} for i, r in sorted(reasons.items()))]
    checkov["skip"] = skips
    metadata["checkov"] = checkov
    resource.Metadata = metadata

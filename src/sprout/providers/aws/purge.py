"""`sprout aws down --purge`: after the stack, everything else the environment left in AWS.

That is the app's objects under its prefix in the bundle bucket (bundles, Sprout wheels, templates,
release results), the retained access-log bucket, and the app's secret. Each step is idempotent, so an
interrupted purge is finished by running it again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sprout.providers.aws.clients import error_code, reported


def empty(s3: Any, bucket: str, prefix: str = "") -> int:
    """Delete every object (and every version) under `prefix`; return how many."""
    deleted = 0
    with reported(f"s3://{bucket}/{prefix}", "check the bucket's permissions and run `down --purge` again"):
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
            keys = [
                {"Key": o["Key"], "VersionId": o["VersionId"]}
                for o in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]
            ]
            for start in range(0, len(keys), 1000):
                s3.delete_objects(
                    Bucket=bucket, Delete={"Objects": keys[start : start + 1000], "Quiet": True}
                )
            deleted += len(page.get("Versions", []))
    return deleted


def _exists(s3: Any, bucket: str) -> bool:
    try:
        s3.head_bucket(Bucket=bucket)
    except Exception as exc:
        if error_code(exc) in ("404", "NoSuchBucket", "NotFound"):
            return False
        raise
    return True


def purge(
    s3: Any,
    secrets: Any,
    bucket: str,
    prefix: str,
    log_bucket: str | None,
    secret: str | None,
    report: Callable[[str], None],
) -> None:
    """Remove the environment's objects, its access-log bucket and its secret."""
    report(f"purged {empty(s3, bucket, prefix + '/')} object(s) under s3://{bucket}/{prefix}/")
    if log_bucket and _exists(s3, log_bucket):
        count = empty(s3, log_bucket)
        with reported(f"bucket {log_bucket}", "delete it by hand once empty"):
            try:
                s3.delete_bucket(Bucket=log_bucket)
            except Exception as exc:
                if error_code(exc) != "NoSuchBucket":
                    raise
        report(f"deleted access-log bucket {log_bucket} ({count} object(s))")
    if secret:
        with reported(f"secret {secret}", "delete it in Secrets Manager by hand"):
            try:
                secrets.delete_secret(SecretId=secret, ForceDeleteWithoutRecovery=True)
                report(f"deleted secret {secret}")
            except Exception as exc:
                if error_code(exc) != "ResourceNotFoundException":
                    raise

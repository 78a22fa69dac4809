"""What a release's one-off instance reports: a JSON object under the app's prefix in the bundle bucket."""

from __future__ import annotations

import json
from typing import Any

from sprout.errors import ServiceError
from sprout.providers.aws.clients import error_code


class S3StateStore:
    """The JSON objects an environment's release instances leave under `<app>/` in the bucket."""

    def __init__(self, s3: Any, bucket: str, app: str) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.app = app

    def read_json(self, key: str) -> dict[str, Any] | None:
        """A JSON object of the app's prefix (a release result), or None while there is none."""
        try:
            body = self.s3.get_object(Bucket=self.bucket, Key=f"{self.app}/{key}")["Body"].read()
        except Exception as exc:
            if error_code(exc) in ("NoSuchKey", "404"):
                return None
            raise ServiceError(f"s3://{self.bucket}/{self.app}/{key}: cannot read it ({exc})") from exc
        found: dict[str, Any] = json.loads(body)
        return found

"""A deployment's persisted state: one JSON object in the bundle bucket, so any machine can resume it."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from sprout.errors import ServiceError
from sprout.providers.aws.clients import error_code
from sprout.providers.aws.context import Colour

Status = Literal["running", "holding", "done", "failed", "rolled_back"]
Step = Literal[
    "upload",
    "launch",
    "release",
    "wait_release",
    "scale_up",
    "wait_healthy",
    "shift",
    "drain",
    "hold",
    "retire",
    "finished",
]


@dataclass(frozen=True)
class DeployState:
    """Where one deployment stands; every transition is saved before the next call to AWS."""

    id: str
    app: str
    env: str
    sha256: str
    strategy: str
    source: Colour
    target: Colour
    step: Step = "upload"
    status: Status = "running"
    step_started: float = 0.0
    canary_index: int = 0
    launch_version: int | None = None
    release_instance: str = ""
    previous_sha256: str = ""
    reason: str = ""
    events: list[str] = field(default_factory=list)

    def moved(self, step: Step, now: float, note: str, **changes: Any) -> DeployState:
        """The state at `step`, with `note` appended to its events."""
        events = [*self.events, f"{time.strftime('%H:%M:%S', time.gmtime(now))} {note}"]
        return replace(self, step=step, step_started=now, events=events, **changes)

    def noted(self, now: float, note: str, **changes: Any) -> DeployState:
        """The state with `note` appended, step unchanged."""
        events = [*self.events, f"{time.strftime('%H:%M:%S', time.gmtime(now))} {note}"]
        return replace(self, events=events, **changes)

    @property
    def active(self) -> bool:
        """Whether the deployment still owns the environment (running, or holding the old colour)."""
        return self.status in ("running", "holding")


class S3StateStore:
    """The state of an environment's latest deployment at `<app>/deploys/<env>.json` in the bucket."""

    def __init__(self, s3: Any, bucket: str, app: str, env: str) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.app = app
        self.key = f"{app}/deploys/{env}.json"

    def read_json(self, key: str) -> dict[str, Any] | None:
        """Another JSON object of the app's prefix (a release result), or None while there is none."""
        try:
            body = self.s3.get_object(Bucket=self.bucket, Key=f"{self.app}/{key}")["Body"].read()
        except Exception as exc:
            if error_code(exc) in ("NoSuchKey", "404"):
                return None
            raise ServiceError(f"s3://{self.bucket}/{self.app}/{key}: cannot read it ({exc})") from exc
        found: dict[str, Any] = json.loads(body)
        return found

    def load(self) -> DeployState | None:
        """The saved state, or None when the environment was never deployed this way."""
        try:
            body = self.s3.get_object(Bucket=self.bucket, Key=self.key)["Body"].read()
        except Exception as exc:
            if error_code(exc) in ("NoSuchKey", "404"):
                return None
            raise ServiceError(
                f"s3://{self.bucket}/{self.key}: cannot read the deploy state ({exc})"
            ) from exc
        return DeployState(**json.loads(body))

    def save(self, state: DeployState) -> None:
        """Write the state (one PUT, so a reader sees the old or the new state, never half)."""
        body = json.dumps(asdict(state), indent=2).encode()
        try:
            self.s3.put_object(Bucket=self.bucket, Key=self.key, Body=body, ContentType="application/json")
        except Exception as exc:
            raise ServiceError(
                f"s3://{self.bucket}/{self.key}: cannot save the deploy state ({exc})"
            ) from exc

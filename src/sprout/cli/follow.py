"""Following a release from the terminal: its step and what it waits for, until it is done."""

from __future__ import annotations

import time
from typing import Any

from sprout.cli.client import ApiClient
from sprout.cli.console import cli_console
from sprout.errors import ServiceError
from sprout.terminal import printable

#: How often the release's record is read while it runs.
POLL = 0.25

console = cli_console()


def follow_release(client: ApiClient, app: str, env: str, deployment_id: int) -> dict[str, Any]:
    """Follow a release until it is done; fail with its reason unless it succeeded; its final record."""
    with console.status(f"{app}/{env}: release {deployment_id}") as progress:
        while True:
            found = [
                d
                for d in client.get("/v1/deployments", app=app, env=env)["deployments"]
                if d["id"] == deployment_id
            ]
            if not found:
                raise ServiceError(f"{app}/{env}: release {deployment_id} disappeared; see `sprout status`")
            deployment: dict[str, Any] = found[0]
            if deployment["state"] == "done":
                break
            waiting = deployment["data"].get("waiting")
            progress.update(
                printable(
                    f"{app}/{env}: release {deployment_id} ({deployment['strategy']}) at {deployment['state']}"
                    + (f": {waiting}" if waiting else "")
                )
            )
            time.sleep(POLL)
    duration = deployment["data"].get("duration")
    took = f" in {duration:.1f}s" if isinstance(duration, int | float) else ""
    if deployment["outcome"] != "succeeded":
        raise ServiceError(
            f"{app}/{env}: release {deployment_id} {deployment['outcome']}{took}: {deployment['reason']}"
        )
    console.print(
        printable(f"{app}/{env}: release {deployment_id} succeeded{took}: {deployment['reason']}"),
        markup=False,
    )
    return deployment

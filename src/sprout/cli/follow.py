"""Following a release from the terminal: its step and what it waits for, until it is done."""

from __future__ import annotations

import time
from typing import Any

from sprout.cli.client import ApiClient, Unreachable
from sprout.cli.console import cli_console
from sprout.errors import ServiceError
from sprout.terminal import printable

#: How often the release's record is read while it runs.
POLL = 0.25

console = cli_console()


def follow_release(client: ApiClient, app: str, env: str, deployment_id: int) -> dict[str, Any]:
    """Follow a release until it is done; fail with its reason unless it succeeded; its final record.
    A Ctrl-C or a daemon that stops answering ends the following, not the release, and says so."""
    try:
        deployment = _follow(client, app, env, deployment_id)
    except KeyboardInterrupt:
        cli_console(stderr=True).print(
            f"{app}/{env}: stopped following; release {deployment_id} goes on in the daemon "
            "(`sprout status` shows it, `sprout rollback` stops it)",
            markup=False,
        )
        raise
    except Unreachable as exc:
        raise ServiceError(
            f"{app}/{env}: the daemon stopped answering during release {deployment_id} ({exc.__cause__}); "
            "every step is recorded, so the release goes on where it stood once the daemon runs again: "
            "`sprout daemon start`, then `sprout status`"
        ) from exc
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


def _follow(client: ApiClient, app: str, env: str, deployment_id: int) -> dict[str, Any]:
    """Poll a release, showing its step, until it is done; its final record."""
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
    return deployment

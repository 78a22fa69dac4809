"""Retiring an instance: wait (bounded) for the router to drain it, stop it, record it stopped.

Each retirement runs on its own thread so a slow drain never holds up the reconcile loop; the loop
starts one only after it has pushed a table without the instance, so the router is already draining it.
"""

from __future__ import annotations

import logging
import threading
import time

from sprout.providers.base import Provider
from sprout.router.client import RouterControl
from sprout.state import Instance, StateStore

log = logging.getLogger(__name__)

#: Seconds an agent gets between SIGTERM and SIGKILL when the control plane stops it.
STOP_GRACE = 10.0


class Retirer:
    """Background retirements, at most one per instance."""

    def __init__(self, store: StateStore, provider: Provider) -> None:
        self._store = store
        self._provider = provider
        self._threads: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()

    def busy(self, instance_id: str) -> bool:
        """True while the instance is being retired."""
        with self._lock:
            return instance_id in self._threads

    def begin(self, admin: RouterControl, instance: Instance, drain: float) -> None:
        """Start retiring `instance` unless that is already under way."""
        with self._lock:
            if instance.id in self._threads:
                return
            thread = threading.Thread(
                target=self._retire, args=(admin, instance, drain), name=f"retire-{instance.id}", daemon=True
            )
            self._threads[instance.id] = thread
        thread.start()

    def wait(self, timeout: float) -> None:
        """Wait for every retirement under way to finish (bounded)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            threads = list(self._threads.values())
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _retire(self, admin: RouterControl, instance: Instance, drain: float) -> None:
        try:
            if drain > 0:
                try:
                    admin.wait_drained(instance.id, timeout=drain)
                except Exception as exc:
                    log.warning("drain of %s: %s; stopping it anyway", instance.id, exc)
            self._provider.stop(instance.id, STOP_GRACE)
            self._store.update_instance(instance.id, state="stopped")
            self._store.record_event(
                instance.app, instance.env, "instance.stopped", f"{instance.id} stopped", instance=instance.id
            )
        except Exception:
            log.exception("retiring %s failed; the next pass retries", instance.id)
        finally:
            with self._lock:
                self._threads.pop(instance.id, None)

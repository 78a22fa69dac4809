"""Housekeeping: what a long-running home stops needing is removed, on a schedule, conservatively.

Each run (`Housekeeper.run`, a supervised `Loop` of the daemon) does four things in this order:

1. Log lines older than their environment's `[logs] retention_days` leave the log store; lines of no
   known environment (the router's, a deleted environment's) keep the longest retention of any.
2. The folder of an instance that stopped or failed more than `INSTANCE_DIR_GRACE` ago is removed, so
   its logs stay readable for a post-mortem meanwhile. Its state row stays: the bill reads it.
3. Bootstrap cache folders of versions that nothing uses, that are not among an app's
   `KEEP_VERSIONS` newest and that nothing started from for `CACHE_GRACE` are removed under the
   bundle's own lock (a bootstrap in progress is skipped), then, each under its own lock, the shared dependency layers no remaining version links to.
4. The same versions' bundles leave the home's own artifact store.

"In use" means a version some instance in a non-terminal state runs, an environment's current version,
a desired target group's version, or an unfinished deployment's version. A run that removed something
records one `housekeeping` event saying what and how much; a run that removed nothing records nothing.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from sprout.agent.appuser import HOMES, INSTANCES, user_name
from sprout.agent.cache import DEPS, READY
from sprout.bundle.store import FolderStore, bundle_key, prune
from sprout.logs.store import LogStore
from sprout.paths import Home
from sprout.providers.local.processes import identify
from sprout.providers.local.provider import PID_FILE, SPEC_FILE, read_pid
from sprout.spec.models import LogsSection
from sprout.state import Instance, StateStore, Version

#: How often the daemon runs housekeeping, and how soon after it starts.
HOUSEKEEPING_INTERVAL = 600.0
HOUSEKEEPING_FIRST_DELAY = 5.0
#: How long the folder of a stopped or failed instance stays for `sprout logs` and a post-mortem.
INSTANCE_DIR_GRACE = 3600.0
#: Versions of each app kept warm (cache folder, bundle) besides those in use: instant rollbacks.
KEEP_VERSIONS = 5
#: A cache folder bootstrapped or started from this recently stays even when nothing records its version
#: as used: a test gate or a redeploy of an old version reads it before its release is recorded.
CACHE_GRACE = 3600.0
#: Retention of lines of no known environment when no environment exists at all.
DEFAULT_RETENTION_DAYS: int = LogsSection.model_fields["retention_days"].default
#: States an instance never leaves; every other state counts as live, whatever new states appear.
TERMINAL_STATES = frozenset({"stopped", "failed"})
DAY = 86400.0

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_TRASH = ".trash-"


@dataclass(frozen=True)
class Removed:
    """What one housekeeping run removed."""

    log_lines: int = 0
    instance_dirs: int = 0
    instance_bytes: int = 0
    cache_dirs: int = 0
    cache_bytes: int = 0
    deps_dirs: int = 0
    deps_bytes: int = 0
    bundles: int = 0
    bundle_bytes: int = 0

    def __bool__(self) -> bool:
        return any(getattr(self, f.name) for f in fields(self))

    def message(self) -> str:
        """One line saying what was removed and how much."""
        parts = [_count(self.log_lines, "log line")] if self.log_lines else []
        for count, bytes_, what in (
            (self.instance_dirs, self.instance_bytes, "instance folder"),
            (self.cache_dirs, self.cache_bytes, "cached version"),
            (self.deps_dirs, self.deps_bytes, "dependency layer"),
            (self.bundles, self.bundle_bytes, "bundle"),
        ):
            if count:
                parts.append(f"{_count(count, what)} ({bytes_ / 1e6:.1f} MB)")
        return "removed " + ", ".join(parts)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


# -- pure rules ------------------------------------------------------------------------------------


def retention_cutoffs(
    retention_days: Mapping[tuple[str, str], int], now: float
) -> tuple[dict[tuple[str, str], float], float]:
    """Per (app, env), the time before which lines go; and the cutoff for lines of no known environment."""
    per_env = {key: now - days * DAY for key, days in retention_days.items()}
    longest = max(retention_days.values(), default=DEFAULT_RETENTION_DAYS)
    return per_env, now - longest * DAY


def expired_instances(instances: Iterable[Instance], now: float, grace: float) -> list[Instance]:
    """Instances that ended (stopped or failed) more than `grace` seconds before `now`."""
    # Rows from before `stopped_at` existed (state schema v2) ended no later than their last update.
    return [
        i for i in instances if i.state in TERMINAL_STATES and (i.stopped_at or i.updated_at) <= now - grace
    ]


def retained_shas(
    versions: Mapping[str, list[Version]], in_use: Mapping[str, set[str]], keep: int
) -> set[str]:
    """Bundle hashes to keep: every version in use, and each app's `keep` newest (`versions` oldest first)."""
    kept: set[str] = set()
    for app, listed in versions.items():
        used = in_use.get(app, set())
        kept.update(v.sha256 for v in listed if v.label in used)
        kept.update(v.sha256 for v in listed[max(0, len(listed) - keep) :])
    return kept


def prunable_cache_entries(names: Iterable[str], retained: set[str]) -> list[str]:
    """Bundle hashes with a cache folder or lock file among `names` that are not retained (never `deps`)."""
    shas = {name.removesuffix(".lock") for name in names}
    return sorted(sha for sha in shas if _SHA256.match(sha) and sha not in retained)


# -- reading the state store -----------------------------------------------------------------------


def versions_in_use(store: StateStore) -> dict[str, set[str]]:
    """Per app, the labels of versions something runs or is about to run."""
    used: dict[str, set[str]] = defaultdict(set)
    for instance in store.list_instances():
        if instance.state not in TERMINAL_STATES:
            used[instance.app].add(instance.version)
    for env in store.list_environments():
        if env.current_version is not None:
            used[env.app].add(env.current_version)
        for group in store.list_groups(env.app, env.name):
            used[env.app].add(group.version)
    for deployment in store.list_deployments(unfinished=True):
        used[deployment.app].add(deployment.version)
    return used


def kept_shas(store: StateStore, keep: int) -> set[str]:
    """The bundle hashes housekeeping keeps, read afresh from the state store."""
    versions = {app: store.list_versions(app) for app in store.list_apps()}
    return retained_shas(versions, versions_in_use(store), keep)


# -- removing --------------------------------------------------------------------------------------


def tree_size(path: Path) -> int:
    """Bytes of the files under `path`, not following symlinks (a linked shared layer is not counted)."""
    total = 0
    # os.walk lists a symlink to a folder among the folders without entering it; files include links.
    for folder, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(FileNotFoundError):
                total += os.lstat(os.path.join(folder, name)).st_size
    return total


def remove_instance_dirs(home: Home, instances: Iterable[Instance]) -> tuple[int, int]:
    """Remove the folders of these ended instances, sparing any whose agent is somehow still alive."""
    count = size = 0
    for instance in instances:
        folder = home.instance_dir(instance.id)
        if not folder.is_dir() or _agent_alive(folder):
            continue
        size += tree_size(folder)
        shutil.rmtree(folder, ignore_errors=True)
        # Under root, the app user's HOME and TMPDIR for this instance (see sprout.agent.main).
        shutil.rmtree(
            home.cache / HOMES / user_name(instance.app) / INSTANCES / instance.id, ignore_errors=True
        )
        count += 1
    return count, size


def _agent_alive(folder: Path) -> bool:
    """Whether the folder's pid record names a live agent (a stop that failed leaves one behind)."""
    record = read_pid(folder / PID_FILE)
    return record is not None and identify(record.pid, record.started, str(folder / SPEC_FILE)) is not None


def prune_cache(cache_dir: Path, kept: Callable[[], set[str]], used_before: float) -> tuple[int, int]:
    """Remove the cache folder and lock file of every bundle hash not in `kept()` and not used since
    `used_before` (its `.ready` marker's time), skipping busy ones."""
    if not cache_dir.is_dir():
        return 0, 0
    _empty_trash(cache_dir)
    count = size = 0

    def unused(name: str) -> bool:
        return name not in kept() and not _used_since(cache_dir / name, used_before)

    for sha in prunable_cache_entries(os.listdir(cache_dir), kept()):
        removed = _remove_locked(cache_dir / sha, cache_dir / f"{sha}.lock", unused)
        if removed is not None:
            count += 1
            size += removed
    return count, size


def _used_since(folder: Path, moment: float) -> bool:
    """Whether the cache folder's `.ready` marker (touched at each start from it) is newer than `moment`."""
    try:
        return (folder / READY).stat().st_mtime >= moment
    except OSError:
        return False


def prune_deps(cache_dir: Path) -> tuple[int, int]:
    """Remove the shared dependency layers that no remaining version folder's `venv` links to."""
    deps = cache_dir / DEPS
    if not deps.is_dir():
        return 0, 0
    _empty_trash(deps)
    count = size = 0
    for layer in sorted(p for p in deps.iterdir() if p.is_dir() and not p.name.startswith(".")):
        # A bootstrap links a version to a layer under the layer's lock, the one held while deciding here.
        removed = _remove_locked(
            layer, deps / f"{layer.name}.lock", lambda key: key not in linked_layers(cache_dir)
        )
        if removed is not None:
            count += 1
            size += removed
    return count, size


def linked_layers(cache_dir: Path) -> set[str]:
    """Keys of the dependency layers some version folder's `venv` or `deps` symlink resolves into."""
    deps = (cache_dir / DEPS).resolve()
    keys: set[str] = set()
    for entry in cache_dir.iterdir():
        if not _SHA256.match(entry.name):
            continue
        for link in (entry / "venv", entry / DEPS):
            if not link.is_symlink():
                continue
            target = Path(os.path.realpath(link))
            if target.is_relative_to(deps) and target != deps:
                keys.add(target.relative_to(deps).parts[0])
    return keys


def _remove_locked(folder: Path, lock_path: Path, still_unused: Callable[[str], bool]) -> int | None:
    """Remove `folder` and `lock_path` holding the lock bootstrap takes; the folder's bytes, or None when
    no folder was removed (busy, in use after all, or only a lock file was left).

    Under the lock the folder is first renamed away and the lock file unlinked, so a bootstrap that waited
    on the old file takes the new one and starts from nothing; the slow delete happens after.
    """
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return None
        # Decided again under the lock: a release may have picked this version since the scan.
        if not still_unused(folder.name):
            return None
        trash = folder.with_name(f"{_TRASH}{folder.name}-{uuid.uuid4().hex[:8]}")
        moved = folder.is_dir()
        if moved:
            (folder / READY).unlink(missing_ok=True)
            os.rename(folder, trash)
        lock_path.unlink(missing_ok=True)
    finally:
        os.close(fd)
    if not moved:
        return None
    size = tree_size(trash)
    shutil.rmtree(trash, ignore_errors=True)
    return size


def _empty_trash(folder: Path) -> None:
    """Finish deletes an earlier run began but did not complete (the daemon stopped mid-way)."""
    for leftover in folder.glob(f"{_TRASH}*"):
        shutil.rmtree(leftover, ignore_errors=True)


def prune_bundles(home: Home, store: StateStore, kept: set[str]) -> tuple[int, int]:
    """Delete from the home's own artifact store the bundles of versions not kept; other stores are shared."""
    artifacts = FolderStore(home.artifacts)
    ordered = [
        v.sha256
        for app in store.list_apps()
        for v in store.list_versions(app)
        if v.store_url in (None, artifacts.url)
    ]
    sizes = {sha: _file_size(artifacts.root / bundle_key(sha)) for sha in ordered}
    deleted = prune(artifacts, 0, kept, ordered)
    return len(deleted), sum(sizes[sha] for sha in deleted)


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


class Housekeeper:
    """Removes what a home stops needing (old log lines, instance folders, cached versions, bundles)."""

    def __init__(
        self,
        home: Home,
        store: StateStore,
        log_store: LogStore,
        *,
        keep_versions: int = KEEP_VERSIONS,
        instance_grace: float = INSTANCE_DIR_GRACE,
        cache_grace: float = CACHE_GRACE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._home = home
        self._store = store
        self._log_store = log_store
        self._keep = keep_versions
        self._grace = instance_grace
        self._cache_grace = cache_grace
        self._clock = clock

    def run(self) -> Removed:
        """One housekeeping pass; records a `housekeeping` event when it removed anything."""
        now = self._clock()
        log_lines = self.prune_logs(now)
        instance_dirs, instance_bytes = remove_instance_dirs(
            self._home, expired_instances(self._store.list_instances(), now, self._grace)
        )
        cache_dirs = cache_bytes = deps_dirs = deps_bytes = 0
        # A cache shared by several homes ($SPROUT_CACHE_DIR) serves instances this store does not know.
        if self._home.shared_cache is None:
            cache_dirs, cache_bytes = prune_cache(
                self._home.cache, lambda: kept_shas(self._store, self._keep), now - self._cache_grace
            )
            deps_dirs, deps_bytes = prune_deps(self._home.cache)
        bundles, bundle_bytes = prune_bundles(self._home, self._store, kept_shas(self._store, self._keep))
        removed = Removed(
            log_lines,
            instance_dirs,
            instance_bytes,
            cache_dirs,
            cache_bytes,
            deps_dirs,
            deps_bytes,
            bundles,
            bundle_bytes,
        )
        if removed:
            self._store.record_event(None, None, "housekeeping", removed.message(), **asdict(removed))
        return removed

    def prune_logs(self, now: float) -> int:
        """Delete log lines past their environment's retention; return how many."""
        days = {(e.app, e.name): e.manifest.logs.retention_days for e in self._store.list_environments()}
        per_env, fallback = retention_cutoffs(days, now)
        total = sum(self._log_store.prune_before(cutoff, app, env) for (app, env), cutoff in per_env.items())
        return total + self._log_store.prune_before(fallback)

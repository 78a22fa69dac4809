"""An environment's backing services as its instances see them: DATABASE_URL and SESSION_STORE_URL.

SQLite files live in the environment's folder; MySQL/PostgreSQL databases named by URL are created when
missing; `engine = "memcached"` without a URL gets managed nodes, one per zone, recorded in
`<env_dir>/memcached.json` so a restarted daemon adopts them instead of starting new ones.
"""

from __future__ import annotations

import os
from pathlib import Path

from sprout.agent.appuser import ensure_user, user_name
from sprout.controlplane.process import read_json, write_json
from sprout.errors import ServiceError
from sprout.paths import Home
from sprout.ports import PortBook
from sprout.services import memcached
from sprout.services.database import database_url, ensure_database, with_password
from sprout.services.refill import refill_node
from sprout.services.sessions import ENV_URL, session_store_env
from sprout.spec import DATABASE_PASSWORD, SESSIONS_PASSWORD, Manifest
from sprout.state import StateStore


class Resources:
    """Provision and release the services of environments; the URLs handed to every instance."""

    def __init__(self, home: Home, store: StateStore) -> None:
        self._home = home
        self._store = store
        self._ports = PortBook.of(home)

    def instance_env(
        self, app: str, env: str, manifest: Manifest, secrets: dict[str, str], zone: str | None = None
    ) -> dict[str, str]:
        """DATABASE_URL and SESSION_STORE_URL (its `zone`'s node first) for a new instance, provisioning what
        is missing.

        `secrets` are the environment's resolved secrets: the database's and the session store's passwords
        are taken out of them and, when there is one, the URL that then holds it moves into them instead
        of the returned variables, so it reaches the instance only as a secret.
        """
        env_dir = self._home.env_dir(app, env)
        env_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        database = manifest.resources.database
        password = secrets.pop(DATABASE_PASSWORD, None)
        data_dir = self._data_dir(app, env)
        db_url = database_url(database.engine, database.url, data_dir, password)
        if ensure_database(db_url) and database.engine != "sqlite":
            self._store.record_event(app, env, "resource.database", f"created database {_redact(db_url)}")
        sessions = manifest.resources.sessions
        sessions_password = secrets.pop(SESSIONS_PASSWORD, None)
        nodes = None
        if sessions.engine == "memcached" and not sessions.url:
            nodes = self._memcached_nodes(app, env, manifest)
        sessions_url = sessions.url
        if sessions_url is not None and sessions_password is not None:
            sessions_url = with_password(sessions_url, sessions_password)
        variables: dict[str, str] = {}
        (secrets if password is not None else variables)["DATABASE_URL"] = db_url
        session_env = session_store_env(sessions.engine, data_dir, nodes=nodes, url=sessions_url, zone=zone)
        (secrets if sessions_password is not None else variables)[ENV_URL] = session_env.pop(ENV_URL)
        return variables | session_env

    def _data_dir(self, app: str, env: str) -> Path:
        """The folder of the environment's SQLite files; under root, one of the user its app runs as."""
        folder = self._home.app_data_dir(app, env)
        if folder == self._home.env_dir(app, env):
            return folder
        user = ensure_user(user_name(app), str(self._home.cache))
        for parent in (folder.parent.parent, folder.parent):
            parent.mkdir(parents=True, exist_ok=True, mode=0o711)
            parent.chmod(0o711)
        folder.mkdir(exist_ok=True, mode=0o700)
        os.chown(folder, user.uid, user.gid)
        return folder

    def sync(self, app: str, env: str, manifest: Manifest) -> None:
        """Keep managed services as the manifest wants them: restart lost nodes, stop unwanted ones."""
        sessions = manifest.resources.sessions
        wanted = sessions.engine == "memcached" and not sessions.url
        exists = self._memcached_file(app, env).exists()
        if wanted:
            self._memcached_nodes(app, env, manifest)
        elif exists:
            stopped = self.release(app, env)
            self._store.record_event(
                app, env, "resource.memcached", f"stopped memcached nodes no longer wanted: {stopped}"
            )

    def release(self, app: str, env: str) -> list[str]:
        """Stop the environment's managed services; the addresses of the nodes that were running."""
        path = self._memcached_file(app, env)
        alive, _ = memcached.adopt(_records(path))
        stopped = memcached.stop_nodes(alive)
        path.unlink(missing_ok=True)
        for memory_file in self._home.env_dir(app, env).glob("memcached-*.mem*"):
            memory_file.unlink(missing_ok=True)
        return [node.address for node in stopped]

    def session_nodes(self, app: str, env: str) -> list[dict[str, object]]:
        """The environment's managed memcached nodes: zone, address, port, pid, running, items held."""
        alive, gone = memcached.adopt(_records(self._memcached_file(app, env)))
        return [
            {
                "zone": node.zone,
                "address": node.address,
                "port": node.port,
                "pid": node.pid,
                "running": node in alive,
                "items": memcached.item_count(node) if node in alive else None,
            }
            for node in sorted([*alive, *gone], key=lambda n: n.zone)
        ]

    def managed_pids(self, app: str, env: str) -> list[int]:
        """Pids of the environment's running managed service processes."""
        alive, _ = memcached.adopt(_records(self._memcached_file(app, env)))
        return [node.pid for node in alive]

    def _memcached_nodes(self, app: str, env: str, manifest: Manifest) -> list[memcached.MemcachedNode]:
        path = self._memcached_file(app, env)
        alive, gone = memcached.adopt(_records(path))
        have = {node.zone for node in alive}
        wanted = [zone for zone in manifest.instances.zones if zone not in have]
        if wanted:
            memory_mb = max(1, manifest.resources.sessions.memory // (1024 * 1024))
            old_ports = {node.zone: node.port for node in gone}
            peers = list(alive)
            started = [
                self._start_node(app, env, zone, memory_mb, old_ports.get(zone), peers) for zone in wanted
            ]
            alive += started
            write_json(path, {"nodes": [node.to_dict() for node in alive]})
        elif gone:
            write_json(path, {"nodes": [node.to_dict() for node in alive]})
        return sorted(
            alive,
            key=lambda node: (
                manifest.instances.zones.index(node.zone)
                if node.zone in manifest.instances.zones
                else len(manifest.instances.zones)
            ),
        )

    def _start_node(
        self,
        app: str,
        env: str,
        zone: str,
        memory_mb: int,
        port: int | None,
        peers: list[memcached.MemcachedNode],
    ) -> memcached.MemcachedNode:
        """A node for `zone`, on its old port when it had one (instances keep their URL), else a new one;
        a node that comes back next to running peers comes back holding their items."""
        env_dir = self._home.env_dir(app, env)
        log_path = env_dir / f"memcached-{zone}.log"
        if port is not None and peers:
            memory_file = env_dir / f"memcached-{zone}.mem"
            try:
                done = refill_node(zone, port, peers, memory_mb, memory_file, log_path, ports=self._ports)
                self._event(
                    app,
                    env,
                    f"restarted memcached node {done.node.address} in zone {zone} holding its peers' "
                    f"{done.copied} items (+{done.caught_up} caught up) after {done.seconds:.2f}s",
                )
                return done.node
            except ServiceError as exc:
                self._event(app, env, f"memcached node in zone {zone}: {exc}; starting it empty")
        if port is not None:
            try:
                node = memcached.start_node(zone, memory_mb, log_path=log_path, port=port, ports=self._ports)
                self._event(app, env, f"started memcached node {node.address} in zone {zone}")
                return node
            except ServiceError as exc:
                self._event(app, env, f"memcached node in zone {zone} not back on port {port}: {exc}")
        node = memcached.start_node(zone, memory_mb, log_path=log_path, ports=self._ports)
        self._event(app, env, f"started memcached node {node.address} in zone {zone}")
        return node

    def _event(self, app: str, env: str, message: str) -> None:
        self._store.record_event(app, env, "resource.memcached", message)

    def _memcached_file(self, app: str, env: str) -> Path:
        return self._home.env_dir(app, env) / "memcached.json"


def _records(path: Path) -> list[dict[str, object]]:
    data = read_json(path) or {}
    nodes = data.get("nodes") or []
    return [dict(node) for node in nodes if isinstance(node, dict)]


def _redact(url: str) -> str:
    """A database URL without its password, for events and logs."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    userinfo, _, host = rest.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}@{host}"

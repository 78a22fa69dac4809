"""Concurrent writers in separate processes and threads queue on SQLite's lock and lose nothing."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

from sprout.spec import parse_manifest
from sprout.state import StateStore

_WRITER = """
import sys
from pathlib import Path
from sprout.spec import parse_manifest
from sprout.state import StateStore

db, tag, count = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
store = StateStore(db)
manifest = parse_manifest({"app": {"name": "microsite", "web": "run"}})
for n in range(count):
    store.record_event("microsite", "production", "tick", f"{tag}-{n}")
    store.add_version("microsite", f"{tag}{n:063x}"[:64].ljust(64, "0"), n, manifest)
    instance = store.add_instance("microsite", "production", "v1", "a", "127.0.0.1", 1000 + n)
    store.update_instance(instance.id, state="running")
store.close()
"""


def test_two_processes_write_without_losing_updates(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    StateStore(db).close()
    count = 60
    writers = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(db), tag, str(count)], stderr=subprocess.PIPE)
        for tag in ("a", "b")
    ]
    try:
        for writer in writers:
            _, err = writer.communicate(timeout=120)
            assert writer.returncode == 0, err.decode()
    finally:
        for writer in writers:
            if writer.poll() is None:
                writer.kill()
                writer.wait()
    store = StateStore(db)
    try:
        messages = {e.message for e in store.list_events(limit=1000)}
        assert messages == {f"{tag}-{n}" for tag in "ab" for n in range(count)}
        versions = store.list_versions("microsite")
        assert [v.label for v in versions] == [f"v{n}" for n in range(1, 2 * count + 1)]
        assert len({v.sha256 for v in versions}) == 2 * count
        assert len(store.list_instances(states=["running"])) == 2 * count
    finally:
        store.close()


def test_threads_share_a_store(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.db")
    manifest = parse_manifest({"app": {"name": "microsite", "web": "run"}})
    same_sha = "c" * 64

    def push() -> None:
        for _ in range(20):
            store.add_version("microsite", same_sha, 1, manifest)
            store.record_event(None, None, "tick", threading.current_thread().name)

    threads = [threading.Thread(target=push, name=f"t{n}") for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert [v.label for v in store.list_versions("microsite")] == ["v1"]
        assert len(store.list_events(limit=1000)) == 80
    finally:
        store.close()

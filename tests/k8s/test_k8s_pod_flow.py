"""A pod's two commands, run as real processes on this machine: the init container writes the spec from
the rendered ConfigMap, then `sprout agent` bootstraps the bundle and serves the app with the pod's identity.

Only what the pod's volumes and network provide differs from the cluster: the cache folder (an emptyDir
at /var/lib/sprout/cache there), the listen address (loopback here, where tests may only bind) and the
port (a free one here, 8080 there).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from k8s_helpers import IMAGE, ROOT, by_kind

from loopback import free_port
from sprout.bundle import FolderStore, pack
from sprout.providers.kubernetes.render import render
from sprout.spec import load_manifest

POD = "hello-blue-6d5f8b7c9-x2k4q"
ZONE = "eu-central-1b"


def get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=2) as response:
        return response.status, response.read().decode()


@pytest.mark.slow
def test_init_container_then_agent_serve_the_app_as_the_pod(tmp_path: Path) -> None:
    app = ROOT / "examples" / "hello"
    store = FolderStore(tmp_path / "store")
    bundle = pack(app, tmp_path / "packed")
    store.put(bundle.path)
    objects = render(load_manifest(app), "production", "v1", bundle.sha256, str(tmp_path / "store"), IMAGE)
    template = json.loads(by_kind(objects, "ConfigMap")["hello-blue"]["data"]["spec.json"])
    port = free_port()
    template.update(host="127.0.0.1", port=port, cache_dir=str(tmp_path / "cache"))
    config = tmp_path / "etc-sprout-config" / "spec.json"
    config.parent.mkdir()
    config.write_text(json.dumps(template))
    spec = tmp_path / "etc-sprout" / "spec.json"

    environ = {key: value for key, value in os.environ.items() if not key.startswith("SPROUT_")}
    environ["HOME"] = str(tmp_path)
    init = subprocess.run(
        [sys.executable, "-m", "sprout.providers.kubernetes.podspec", str(config), str(spec)],
        env={**environ, "SPROUT_INSTANCE": POD, "SPROUT_ZONE": ZONE},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert init.returncode == 0, init.stderr

    stdout = tmp_path / "agent.stdout"
    with stdout.open("wb") as out:
        agent = subprocess.Popen(
            [sys.executable, "-m", "sprout", "agent", "--spec", str(spec)],
            env=environ,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        body = ""
        while time.monotonic() < deadline and agent.poll() is None:
            try:
                status, body = get(f"http://127.0.0.1:{port}/")
                if status == 200:
                    break
            except OSError:
                time.sleep(0.1)
        assert body == f"Hello from Sprout: hello v1 on {POD} in zone {ZONE}\n", stdout.read_text()
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(timeout=30) == 0
    finally:
        if agent.poll() is None:
            os.killpg(agent.pid, signal.SIGKILL)
            agent.wait(timeout=10)
    # The agent's records went to its stdout (`kubectl logs`), each naming the pod.
    records = [json.loads(line) for line in stdout.read_text().splitlines() if line.startswith("{")]
    assert records, stdout.read_text()
    assert {record.get("instance") for record in records} == {POD}

"""Acceptance of issue 14, point 2, with real processes: history only for real changes.

`up` with nothing to change (20 in a row, then 2 at once, while a warm fleet is kept) writes no history
row; `deploy` of a folder whose manifest changed applies that manifest, so `plan` is clean after it.
Figures are printed (`-s`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from e2e_kit import Sprout, kill_all, processes_of
from release_kit import cli, make_relapp, set_manifest

from loopback import free_port

pytestmark = pytest.mark.slow

APP = "relapp"


def history_rows(sprout: Sprout) -> list[dict[str, Any]]:
    return list(json.loads(sprout.run("history", str(sprout.app_dir), "--json").stdout))


def test_up_without_changes_writes_no_history_and_deploy_applies_its_manifest(
    tmp_path: Path, shared_bundle_cache: Path
) -> None:
    app = make_relapp(tmp_path)
    rel = Sprout(home=tmp_path / "home", app_dir=app, port=free_port())
    try:
        rel.up()
        # A new version whose manifest changes a setting; the 10 min window keeps v1 warm meanwhile.
        set_manifest(app, 'timeout = "500ms"', 'timeout = "400ms"')
        rel.run("deploy", str(app))
        deployed = history_rows(rel)[-1]
        plan = " ".join(rel.run("plan", str(app)).stdout.split())
        before = len(history_rows(rel))
        ups = [rel.up().stdout for _ in range(20)]
        together = [cli(rel, "up", str(app), "--port", str(rel.port)) for _ in range(2)]
        outputs = [proc.communicate(timeout=120) for proc in together]
        codes = [proc.returncode for proc in together]
        after = history_rows(rel)
        env = rel.environment(APP)
    finally:
        kill_all(processes_of(rel.home))
    print(
        f"\n[acceptance 2] 20 `up`s + 2 concurrent: {len(after) - before} history rows added; "
        f"deploy recorded {deployed['manifest_hash'][:12]}: {deployed['diff_text']!r}"
    )
    assert deployed["action"] == "deploy" and deployed["version"] == "v2"
    assert deployed["diff_text"].endswith("\n~ health.timeout: 500ms → 400ms"), deployed
    assert plan.startswith("no changes: relapp/production already matches relapp's manifest"), plan
    assert "warm fleet blue: 2 instance(s) of v1 kept for rollback until" in plan
    assert f"(manifest {deployed['manifest_hash'][:12]}, v2, 2 instances" in plan
    for text in ups:
        assert "relapp/production: no changes (v2 already applied)" in text, text
    assert codes == [0, 0], outputs
    assert all("no changes (v2 already applied)" in out for out, _ in outputs), outputs
    assert len(after) == before
    assert env["desired"] == 2 and [w["version"] for w in env["warm"]] == ["v1"]

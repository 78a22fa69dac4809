"""Acceptance 1: checkov finds nothing failing in the rendered templates, and every skip says why."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sprout.providers.aws import template_json

from .helpers import render

CHECKOV = shutil.which("checkov") or str(Path(sys.executable).parent / "checkov")


def scan(template: dict[str, Any], folder: Path) -> dict[str, Any]:
    """checkov's JSON report on one template, offline (no download of its guideline catalogue)."""
    path = folder / "template.json"
    path.write_text(template_json(template))
    result = subprocess.run(
        [
            CHECKOV,
            "--file",
            str(path),
            "--framework",
            "cloudformation",
            "--output",
            "json",
            "--skip-download",
        ],
        capture_output=True,
        text=True,
        timeout=180,
        env={"PATH": str(Path(sys.executable).parent), "HOME": str(folder), "BC_SKIP_MAPPING": "TRUE"},
    )
    assert result.stdout.startswith("{"), result.stderr[-2000:]
    report: dict[str, Any] = json.loads(result.stdout)
    return report


@pytest.mark.parametrize("app", ["microsite", "lottery", "full", "acm"])
def test_checkov_fails_nothing_and_every_skip_has_a_reason(app: str, tmp_path: Path) -> None:
    template = render(app)
    report = scan(template, tmp_path)
    failed = [f"{c['check_id']} {c['resource']}" for c in report["results"]["failed_checks"]]
    assert failed == []
    assert report["summary"]["passed"] > 30
    skipped = {(c["check_id"], c["resource"].split(".", 1)[1]) for c in report["results"]["skipped_checks"]}
    declared = set()
    for name, resource in template["Resources"].items():
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            assert len(skip["comment"]) > 20 and "\n" not in skip["comment"], (name, skip)
            declared.add((skip["id"], name))
    assert skipped == declared

"""The AWS wheelhouse is re-packed once per set of installed files, then reused by every render, plan,
up and deploy until an installed file changes."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import zipfile
from importlib import metadata
from pathlib import Path

from sprout.providers.aws.wheels import WHEELHOUSE_CACHE, cached_wheelhouse


def _installed(site: Path, version: str = "1.0") -> list[metadata.Distribution]:
    """A one-module distribution installed in `site` as pip lays one out."""
    (site / "tiny.py").write_text("VALUE = 1\n")
    info = site / f"tiny-{version}.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: tiny\nVersion: {version}\n")
    (info / "WHEEL").write_text("Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
    (info / "RECORD").write_text(
        f"tiny.py,,\ntiny-{version}.dist-info/METADATA,,\ntiny-{version}.dist-info/RECORD,,\n"
    )
    return list(metadata.distributions(path=[str(site)]))


def _members(house: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(house)) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]


def test_the_wheelhouse_is_reused_until_an_installed_file_changes(tmp_path: Path) -> None:
    site, cache = tmp_path / "site", tmp_path / "cache"
    site.mkdir()
    dists = _installed(site)
    first = cached_wheelhouse(dists, cache)
    assert list(_members(first)) == ["tiny-1.0-py3-none-any.whl"]
    [kept] = (cache / WHEELHOUSE_CACHE).glob("*.tar")
    assert kept.read_bytes() == first
    # What the cache holds is what is returned: nothing is re-packed while the installed files stay.
    kept.write_bytes(b"marked")
    assert cached_wheelhouse(dists, cache) == b"marked"

    # An edited module (same size, newer time) is a new wheelhouse, and the old one is deleted.
    (site / "tiny.py").write_text("VALUE = 2\n")
    os.utime(site / "tiny.py", ns=(kept.stat().st_mtime_ns + 10**9,) * 2)
    second = cached_wheelhouse(dists, cache)
    assert b"VALUE = 2" in _wheel_file(second, "tiny.py")
    assert [p.name for p in (cache / WHEELHOUSE_CACHE).glob("*.tar")] != [kept.name]
    assert len(list((cache / WHEELHOUSE_CACHE).glob("*.tar"))) == 1

    # Another version installed is another wheelhouse too.
    (site / "tiny-1.0.dist-info").rename(site / "tiny-1.1.dist-info")
    third = cached_wheelhouse(_installed(site, "1.1"), cache)
    assert list(_members(third)) == ["tiny-1.1-py3-none-any.whl"]


def _wheel_file(house: bytes, name: str) -> bytes:
    [wheel] = _members(house).values()
    with zipfile.ZipFile(io.BytesIO(wheel)) as zf:
        return zf.read(name)


def test_render_twice_builds_the_wheelhouse_once_and_prints_the_same_template(tmp_path: Path) -> None:
    env = {**os.environ, "SPROUT_HOME": str(tmp_path / "home"), "SPROUT_CACHE_DIR": str(tmp_path / "cache")}
    app = Path(__file__).parents[2] / "examples" / "microsite"
    render = [sys.executable, "-m", "sprout", "aws", "render", str(app), "--env", "prod"]
    first = subprocess.run(render, env=env, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    houses = list((tmp_path / "cache").rglob(f"{WHEELHOUSE_CACHE}/*.tar"))
    assert len(houses) == 1
    built = houses[0].stat().st_mtime_ns
    second = subprocess.run(render, env=env, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stderr
    assert second.stdout == first.stdout
    assert houses[0].stat().st_mtime_ns == built, "the second render re-packed the wheelhouse"

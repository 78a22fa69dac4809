"""Property: whatever entries an archive holds, safe_unpack either rejects it with a BundleError or
produces only regular files and folders inside dest; nothing ever lands outside, nothing is left over."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sprout.bundle.unpack import safe_unpack
from sprout.errors import BundleError

segment = st.sampled_from(["a", "b", "..", ".", "", "c:", "\\", "..\\x", "/", "sentinel"])
names = st.lists(segment, min_size=1, max_size=4).map("/".join)
kinds = st.sampled_from(
    [tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.FIFOTYPE]
)
modes = st.sampled_from([0o644, 0o755, 0o4755, 0o2644, 0o1777, 0o600])
entries = st.lists(st.tuples(names, kinds, modes, st.binary(max_size=64)), max_size=8)


def build(path: Path, spec: list[tuple[str, bytes, int, bytes]]) -> None:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, mode, data in spec:
            info = tarfile.TarInfo(name)
            info.type = kind
            info.mode = mode
            if kind == tarfile.REGTYPE:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                info.linkname = "../sentinel" if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE) else ""
                tar.addfile(info)
    path.write_bytes(gzip.compress(raw.getvalue()))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(entries)
def test_any_archive_is_rejected_or_lands_inside_dest(spec: list[tuple[str, bytes, int, bytes]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        sentinel, work = root / "sentinel", root / "work"
        sentinel.mkdir()
        work.mkdir()
        archive = root / "fuzz.tar.gz"
        build(archive, spec)
        dest = work / "dest"
        try:
            safe_unpack(archive, dest, expected_sha256=None)
        except BundleError:
            assert list(work.iterdir()) == []
        else:
            assert [p.name for p in work.iterdir()] == ["dest"]
            for folder, dirs, files in os.walk(dest):
                for name in dirs + files:
                    path = Path(folder) / name
                    assert not path.is_symlink()
                    assert path.is_dir() or path.is_file()
                    assert not path.stat().st_mode & 0o7000
        assert list(sentinel.iterdir()) == []

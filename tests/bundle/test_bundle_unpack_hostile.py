"""Hostile bundle corpus: every archive is built here with tarfile and must be rejected cleanly.

For each case: the exact error, nothing written outside the target (a sentinel folder stays empty),
and no destination or temp folder left behind.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import re
import stat
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from sprout.bundle.unpack import safe_unpack
from sprout.errors import BundleError

Entry = tuple[tarfile.TarInfo, bytes | None]


def file_entry(name: str, data: bytes = b"x", mode: int = 0o644) -> Entry:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    return info, data


def raw_header_entry(kind: bytes, size: int) -> Entry:
    """A pax or GNU long-name header member carrying `size` bytes of zeros: a header bomb."""
    info = tarfile.TarInfo("header")
    info.type = kind
    info.size = size
    return info, b"\0" * size


def special_entry(name: str, kind: bytes, linkname: str = "", mode: int = 0o644) -> Entry:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    info.mode = mode
    return info, None


def build(path: Path, entries: list[Entry], trailing_zeros: int = 0) -> Path:
    """Write `entries` as a tar.gz at `path`, optionally followed by zeros inside the gzip stream."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    with gzip.open(path, "wb") as gz:
        gz.write(raw.getvalue())
        chunk = b"\0" * (1024 * 1024)
        for _ in range(trailing_zeros // len(chunk)):
            gz.write(chunk)
    return path


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class Case:
    id: str
    entries: Callable[[Path], list[Entry]]
    message: str
    limits: dict[str, int] = field(default_factory=dict)
    trailing_zeros: int = 0


REJECTED = "; the bundle is rejected"
ONLY = "; bundles hold regular files and folders only"

CASES = [
    Case(
        "absolute-path",
        lambda s: [file_entry(f"{s}/evil")],
        "entry '{s}/evil': has an absolute path" + REJECTED,
    ),
    Case(
        "dotdot",
        lambda s: [file_entry("../../sentinel/evil")],
        "entry '../../sentinel/evil': has a '..' component in its path" + REJECTED,
    ),
    Case(
        "inner-dotdot",
        lambda s: [file_entry("a/../../sentinel/evil")],
        "entry 'a/../../sentinel/evil': has a '..' component in its path" + REJECTED,
    ),
    Case(
        "backslash",
        lambda s: [file_entry("..\\..\\sentinel\\evil")],
        "entry '..\\\\..\\\\sentinel\\\\evil': has a backslash in its path" + REJECTED,
    ),
    Case(
        "drive-letter",
        lambda s: [file_entry("C:evil")],
        "entry 'C:evil': has a drive letter in its path" + REJECTED,
    ),
    Case(
        "control-char",
        lambda s: [file_entry("evil\nname")],
        "entry 'evil\\nname': has a control character in its path" + REJECTED,
    ),
    Case(
        "symlink-then-write-through",
        lambda s: [special_entry("link", tarfile.SYMTYPE, str(s)), file_entry("link/evil")],
        "entry 'link': is a symlink (to '{s}')" + ONLY + REJECTED,
    ),
    Case(
        "relative-symlink",
        lambda s: [special_entry("up", tarfile.SYMTYPE, "../../sentinel")],
        "entry 'up': is a symlink (to '../../sentinel')" + ONLY + REJECTED,
    ),
    Case(
        "hardlink",
        lambda s: [special_entry("hl", tarfile.LNKTYPE, "/etc/passwd")],
        "entry 'hl': is a hardlink (to '/etc/passwd')" + ONLY + REJECTED,
    ),
    Case(
        "char-device",
        lambda s: [special_entry("null", tarfile.CHRTYPE)],
        "entry 'null': is a device file" + ONLY + REJECTED,
    ),
    Case(
        "block-device",
        lambda s: [special_entry("sda", tarfile.BLKTYPE)],
        "entry 'sda': is a device file" + ONLY + REJECTED,
    ),
    Case(
        "fifo",
        lambda s: [special_entry("pipe", tarfile.FIFOTYPE)],
        "entry 'pipe': is a FIFO" + ONLY + REJECTED,
    ),
    Case(
        "setuid",
        lambda s: [file_entry("suid", b"#!/bin/sh\n", mode=0o4755)],
        "entry 'suid': has setuid, setgid or sticky bits (mode 4755), which are never allowed" + REJECTED,
    ),
    Case(
        "setgid-dir",
        lambda s: [special_entry("d", tarfile.DIRTYPE, mode=0o2755)],
        "entry 'd': has setuid, setgid or sticky bits (mode 2755), which are never allowed" + REJECTED,
    ),
    Case(
        "duplicate-entry",
        lambda s: [file_entry("a.txt", b"one"), file_entry("a.txt", b"two")],
        "entry 'a.txt': duplicate entry for 'a.txt'" + REJECTED,
    ),
    Case(
        "duplicate-after-normalising",
        lambda s: [file_entry("a.txt", b"one"), file_entry("./a.txt", b"two")],
        "entry './a.txt': duplicate entry for 'a.txt'" + REJECTED,
    ),
    Case(
        "file-as-parent",
        lambda s: [file_entry("a", b"file"), file_entry("a/b")],
        "entry 'a/b': its parent 'a' is a file" + REJECTED,
    ),
    Case(
        "file-over-folder",
        lambda s: [file_entry("a/b"), file_entry("a")],
        "entry 'a': is a file, but earlier entries put files inside 'a'" + REJECTED,
    ),
    Case(
        "too-many-entries",
        lambda s: [file_entry(f"f{i}") for i in range(6)],
        "entry 'f5': is one entry too many (more than 5); bundle fewer files" + REJECTED,
        limits={"max_entries": 5},
    ),
    Case(
        "file-over-limit",
        lambda s: [file_entry("big", b"\0" * 2048)],
        "entry 'big': is 2048 bytes, over the per-file limit of 1024" + REJECTED,
        limits={"max_file_bytes": 1024},
    ),
    Case(
        "total-over-limit",
        lambda s: [file_entry(f"part{i}", b"\0" * 4096) for i in range(3)],
        "entry 'part2': takes the unpacked size over the limit of 10000 bytes" + REJECTED,
        limits={"max_total_bytes": 10_000},
    ),
    Case(
        "gzip-bomb-file",
        lambda s: [file_entry("bomb", b"\0" * (32 * 1024 * 1024))],
        "entry 'bomb': takes the unpacked size over the limit of 1048576 bytes" + REJECTED,
        limits={"max_total_bytes": 1024 * 1024},
    ),
    Case(
        "pax-header-bomb",
        lambda s: [raw_header_entry(tarfile.XHDTYPE, 64 * 1024 * 1024), file_entry("ok.txt")],
        "a tar header is larger than 1048576 bytes (a header bomb); the bundle is rejected",
    ),
    Case(
        "gnu-longname-bomb",
        lambda s: [raw_header_entry(tarfile.GNUTYPE_LONGNAME, 64 * 1024 * 1024), file_entry("ok.txt")],
        "a tar header is larger than 1048576 bytes (a header bomb); the bundle is rejected",
    ),
    Case(
        "gzip-bomb-padding",
        lambda s: [file_entry("ok.txt", b"fine")],
        "decompresses to more than 1097728 bytes (a gzip bomb or a bundle over the size limit); "
        "rebuild it smaller",
        limits={"max_total_bytes": 1024 * 1024, "max_entries": 4},
        trailing_zeros=64 * 1024 * 1024,
    ),
]


@pytest.fixture
def arena(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(sentinel folder that must stay empty, work folder holding dest, dest path)."""
    sentinel = tmp_path / "sentinel"
    work = tmp_path / "work"
    sentinel.mkdir()
    work.mkdir()
    return sentinel, work, work / "dest"


def assert_untouched(sentinel: Path, work: Path) -> None:
    assert list(sentinel.iterdir()) == []
    assert list(work.iterdir()) == [], "no destination and no temp folder may be left behind"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_archive_is_rejected(case: Case, arena: tuple[Path, Path, Path], tmp_path: Path) -> None:
    sentinel, work, dest = arena
    archive = build(tmp_path / "hostile.tar.gz", case.entries(sentinel), case.trailing_zeros)
    expected = "bundle hostile.tar.gz: " + case.message.replace("{s}", str(sentinel))
    with pytest.raises(BundleError) as err:
        safe_unpack(archive, dest, expected_sha256=sha(archive), **case.limits)
    assert str(err.value) == expected
    assert_untouched(sentinel, work)


def test_hash_mismatch_is_rejected_before_parsing(arena: tuple[Path, Path, Path], tmp_path: Path) -> None:
    sentinel, work, dest = arena
    archive = build(tmp_path / "ok.tar.gz", [file_entry("app.py", b"print(1)")])
    wrong = "0" * 64
    with pytest.raises(BundleError) as err:
        safe_unpack(archive, dest, expected_sha256=wrong)
    assert str(err.value) == (
        f"bundle ok.tar.gz: sha256 mismatch (expected {wrong}, got {sha(archive)}); "
        "the bundle is corrupt or was tampered with, fetch it again from the artifact store"
    )
    assert_untouched(sentinel, work)


def test_malformed_expected_hash_is_rejected(arena: tuple[Path, Path, Path], tmp_path: Path) -> None:
    sentinel, work, dest = arena
    archive = build(tmp_path / "ok.tar.gz", [file_entry("app.py")])
    with pytest.raises(BundleError) as err:
        safe_unpack(archive, dest, expected_sha256="abc")
    assert (
        str(err.value)
        == "'abc' is not a sha256 (64 lowercase hex digits); use the hash `sprout push` printed"
    )
    assert_untouched(sentinel, work)


@pytest.mark.parametrize("cut", ["truncated", "garbage"])
def test_corrupt_gzip_is_rejected(cut: str, arena: tuple[Path, Path, Path], tmp_path: Path) -> None:
    sentinel, work, dest = arena
    archive = build(tmp_path / "bad.tar.gz", [file_entry(f"f{i}", os.urandom(4096)) for i in range(8)])
    data = archive.read_bytes()
    archive.write_bytes(data[: len(data) // 2] if cut == "truncated" else b"not a gzip stream at all")
    with pytest.raises(BundleError) as err:
        safe_unpack(archive, dest, expected_sha256=sha(archive))
    assert re.fullmatch(
        r"bundle bad\.tar\.gz: corrupt or truncated archive \(.+\); fetch or push it again", str(err.value)
    )
    assert_untouched(sentinel, work)


def test_existing_destination_symlink_is_never_followed(
    arena: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    sentinel, work, dest = arena
    archive = build(tmp_path / "ok.tar.gz", [file_entry("app.py")])
    dest.symlink_to(sentinel)
    with pytest.raises(BundleError) as err:
        safe_unpack(archive, dest, expected_sha256=sha(archive))
    assert str(err.value) == (
        f"bundle ok.tar.gz: destination {dest} already exists; unpack into a new folder "
        "(an existing folder is never merged into)"
    )
    assert list(sentinel.iterdir()) == []
    assert [p.name for p in work.iterdir()] == ["dest"]


def test_benign_archive_unpacks_with_normalised_modes(arena: tuple[Path, Path, Path], tmp_path: Path) -> None:
    sentinel, work, dest = arena
    entries = [
        special_entry("./pkg", tarfile.DIRTYPE, mode=0o700),
        file_entry("./pkg/app.py", b"print('hi')\n", mode=0o600),
        file_entry("bin/run", b"#!/bin/sh\necho run\n", mode=0o700),
        file_entry("deep/er/still/data.txt", b"data", mode=0o666),
        special_entry("empty", tarfile.DIRTYPE, mode=0o777),
    ]
    archive = build(tmp_path / "ok.tar.gz", entries)
    safe_unpack(archive, dest, expected_sha256=sha(archive))
    assert (dest / "pkg/app.py").read_bytes() == b"print('hi')\n"
    assert (dest / "deep/er/still/data.txt").read_bytes() == b"data"
    modes = {
        rel: stat.S_IMODE((dest / rel).stat().st_mode)
        for rel in ("pkg", "pkg/app.py", "bin", "bin/run", "deep/er/still/data.txt", "empty", ".")
    }
    assert modes == {
        "pkg": 0o755,
        "pkg/app.py": 0o644,
        "bin": 0o755,
        "bin/run": 0o755,
        "deep/er/still/data.txt": 0o644,
        "empty": 0o755,
        ".": 0o755,
    }
    assert sorted(p.name for p in work.iterdir()) == ["dest"]
    assert list(sentinel.iterdir()) == []

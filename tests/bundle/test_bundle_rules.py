"""One set of rules at both ends: every name and size unpack refuses, `sprout push` refuses, same words.

Each case makes real files in an app folder and the same entries in a real tar.gz; pack (what `push`
runs) and `safe_unpack` must both refuse, with the same `entry '<name>': <problem>` in their messages.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import subprocess
import sys
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from sprout.bundle import pack
from sprout.bundle.rules import MAX_FILE_BYTES
from sprout.bundle.unpack import safe_unpack
from sprout.errors import BundleError

PUSH_ADVICE = (
    "; rename it, make it smaller or add it to .sproutignore (no instance could unpack this version)"
)
UNPACK_ADVICE = "; the bundle is rejected"
CONTROL = "has a control character in its path"
LONG_DIRS = "/".join(["d" * 200] * 6)


@dataclass
class Case:
    id: str
    files: dict[str, int]  # bundle path -> size; every one of them is written in the folder and the archive
    refused: str
    problem: str
    limits: dict[str, int] = field(default_factory=dict)


CASES = [
    Case("backslash", {"ok.txt": 1, "a\\b.txt": 1}, "a\\b.txt", "has a backslash in its path"),
    Case("newline", {"new\nline.txt": 1}, "new\nline.txt", CONTROL),
    Case("carriage-return", {"cr\r.txt": 1}, "cr\r.txt", CONTROL),
    Case("tab", {"tab\t.txt": 1}, "tab\t.txt", CONTROL),
    Case("ansi-escape", {"esc\x1b[31mred.txt": 1}, "esc\x1b[31mred.txt", CONTROL),
    Case("osc-escape", {"osc\x1b]0;title\x07.txt": 1}, "osc\x1b]0;title\x07.txt", CONTROL),
    Case("delete", {"del\x7f.txt": 1}, "del\x7f.txt", CONTROL),
    Case("c1-control", {"nel\x85.txt": 1}, "nel\x85.txt", CONTROL),
    Case("csi-c1", {"csi\x9b31m.txt": 1}, "csi\x9b31m.txt", CONTROL),
    Case("drive-letter", {"C:evil.txt": 1}, "C:evil.txt", "has a drive letter in its path"),
    Case("not-utf8", {"bad\udcff.txt": 1}, "bad\udcff.txt", "has a path that is not valid UTF-8"),
    Case("over-long-path", {f"{LONG_DIRS}/f.txt": 1}, f"{LONG_DIRS}/f.txt", "has a path longer than 1024 bytes"),
    Case("file-over-limit", {"big.bin": 2048, "small.txt": 1}, "big.bin",
         "is 2048 bytes, over the per-file limit of 1024", {"max_file_bytes": 1024}),
    Case("total-over-limit", {f"part{i}": 4096 for i in range(3)}, "part2",
         "takes the unpacked size over the limit of 10000 bytes", {"max_total_bytes": 10_000}),
    Case("too-many-files", {f"f{i}": 1 for i in range(6)}, "f5",
         "is one entry too many (more than 5); bundle fewer files", {"max_entries": 5}),
]  # fmt: skip

# Names a folder cannot hold, so no push can meet them: unpack alone refuses them (same rule function).
ARCHIVE_ONLY = [
    ("absolute", "/etc/evil", "has an absolute path"),
    ("dotdot", "a/../../evil", "has a '..' component in its path"),
    ("root", "./", "names the bundle root itself"),
    ("over-long-name", "n" * 256, "has a name longer than 255 bytes in its path"),
]


def make_folder(app: Path, files: dict[str, int]) -> None:
    app.mkdir()
    for name, size in files.items():
        path = os.fsencode(app / name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as out:
            out.write(b"x" * size)


def make_archive(path: Path, files: dict[str, int]) -> str:
    """The same files as a tar.gz in pack's (sorted) order; returns its sha256."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT, encoding="utf-8") as tar:
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.size = files[name]
            tar.addfile(info, io.BytesIO(b"x" * files[name]))
    path.write_bytes(gzip.compress(raw.getvalue()))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def unpack_refusal(archive: Path, sha: str, dest: Path, limits: dict[str, int]) -> str:
    with pytest.raises(BundleError) as err:
        safe_unpack(archive, dest, expected_sha256=sha, **limits)
    assert not dest.exists()
    return str(err.value)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_push_refuses_what_unpack_refuses_with_the_same_words(case: Case, tmp_path: Path) -> None:
    refusal = f"entry {case.refused!r}: {case.problem}"
    archive = tmp_path / "v.tar.gz"
    sha = make_archive(archive, case.files)
    assert unpack_refusal(archive, sha, tmp_path / "dest", case.limits) == (
        f"bundle v.tar.gz: {refusal}{UNPACK_ADVICE}"
    )
    app = tmp_path / "app"
    make_folder(app, case.files)
    with pytest.raises(BundleError) as err:
        pack(app, tmp_path / "out", **case.limits)
    assert str(err.value) == f"{app}: {refusal}{PUSH_ADVICE}"
    assert not list((tmp_path / "out").iterdir())


@pytest.mark.parametrize(("id", "name", "problem"), ARCHIVE_ONLY, ids=[c[0] for c in ARCHIVE_ONLY])
def test_names_no_folder_can_hold_are_refused_by_unpack(
    id: str, name: str, problem: str, tmp_path: Path
) -> None:
    archive = tmp_path / "v.tar.gz"
    sha = make_archive(archive, {name: 1})
    assert unpack_refusal(archive, sha, tmp_path / "dest", {}) == (
        f"bundle v.tar.gz: entry {name!r}: {problem}{UNPACK_ADVICE}"
    )


def sprout_push(app: Path, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SPROUT_HOME": str(home)}
    env.pop("SPROUT_STORE", None)
    return subprocess.run(
        [sys.executable, "-m", "sprout", "push", str(app)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_sprout_push_refuses_a_file_over_the_unpack_limit_before_storing_anything(tmp_path: Path) -> None:
    """The real limit (512 MiB per file), through the CLI; the file is sparse so nothing large is written."""
    app, home = tmp_path / "app", tmp_path / "home"
    app.mkdir()
    (app / "sprout.toml").write_text('[app]\nname = "hello"\nweb = "run"\n')
    with open(app / "huge.bin", "wb") as out:
        out.truncate(MAX_FILE_BYTES + 1)
    refusal = f"entry 'huge.bin': is {MAX_FILE_BYTES + 1} bytes, over the per-file limit of {MAX_FILE_BYTES}"
    done = sprout_push(app, home)
    assert done.returncode == 2
    assert done.stderr == f"error: {app}: {refusal}{PUSH_ADVICE}\n"
    assert not list(home.glob("**/*.tar.gz"))
    # Unpack says the same of an archive whose header announces that size (refused before any data).
    header = tarfile.TarInfo("huge.bin")
    header.size = MAX_FILE_BYTES + 1
    archive = tmp_path / "v.tar.gz"
    archive.write_bytes(gzip.compress(header.tobuf(tarfile.PAX_FORMAT)))
    sha = hashlib.sha256(archive.read_bytes()).hexdigest()
    assert unpack_refusal(archive, sha, tmp_path / "dest", {}) == f"bundle v.tar.gz: {refusal}{UNPACK_ADVICE}"


def test_sprout_push_refuses_a_control_character_in_a_name(tmp_path: Path) -> None:
    app, home = tmp_path / "app", tmp_path / "home"
    make_folder(app, {"sprout.toml": 0, "evil\x1b]0;pwned\x07\n.txt": 1})
    (app / "sprout.toml").write_text('[app]\nname = "hello"\nweb = "run"\n')
    done = sprout_push(app, home)
    assert done.returncode == 2
    assert done.stderr == f"error: {app}: entry 'evil\\x1b]0;pwned\\x07\\n.txt': {CONTROL}{PUSH_ADVICE}\n"

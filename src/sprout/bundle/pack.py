"""Pack an app folder into a deterministic, content-addressed tar.gz version bundle.

The story: walk the tree in sorted order, drop what the ignore rules exclude (`.gitignore` and
`.sproutignore` at any depth, plus a fixed list Sprout never ships), refuse symlinks that leave the tree
and anything unpack would refuse (`bundle/rules.py`: names, sizes, counts), leave out the files the
manifest's `file:` secrets name (secrets never enter a bundle), then write every file with fixed metadata
(mtime, owner, mode) through a gzip stream with no timestamp or
name. The same tree therefore always gives the same bytes and the same sha256, whatever the files' mtimes,
owners or creation order.
"""

from __future__ import annotations

import errno
import gzip
import os
import stat
import tarfile
import tempfile
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pathspec

from sprout.bundle import rules
from sprout.bundle.digest import sha256_file
from sprout.errors import BundleError
from sprout.spec.source import MANIFEST_NAME

# 1980-01-01T00:00:00Z: the earliest time every archive format and tool accepts (zip, wheels, pip).
FIXED_MTIME = 315532800
ALWAYS_SKIPPED = (".git", ".venv", "venv", "__pycache__", "*.pyc", ".sprout", "node_modules")
IGNORE_FILES = (".gitignore", ".sproutignore")


@dataclass(frozen=True)
class PackedBundle:
    """A packed bundle on disk: its path, content hash, byte size and number of files."""

    path: Path
    sha256: str
    size: int
    files: int
    names: frozenset[str] = frozenset()
    """The bundle's file paths, relative to the app folder."""
    secrets_left_out: tuple[str, ...] = ()
    """Files of the app folder left out because `file:` secrets name them (relative to the folder)."""


@dataclass(frozen=True)
class _Rules:
    """The ignore patterns read from one folder, matched against paths relative to that folder."""

    base: str
    spec: pathspec.PathSpec


_ALWAYS = pathspec.GitIgnoreSpec.from_lines(ALWAYS_SKIPPED)


def pack(
    app_dir: Path,
    out_dir: Path,
    *,
    max_total_bytes: int = rules.MAX_TOTAL_BYTES,
    max_entries: int = rules.MAX_ENTRIES,
    max_file_bytes: int = rules.MAX_FILE_BYTES,
) -> PackedBundle:
    """Pack `app_dir` into `out_dir/<sha256>.tar.gz`, deterministically, honouring ignore rules.

    The limits are unpack's (`safe_unpack` takes the same ones): what exceeds them is refused here.
    """
    app_dir = app_dir.resolve()
    if not app_dir.is_dir():
        raise BundleError(f"{app_dir}: not a folder; give the app folder that holds sprout.toml")
    out_dir.mkdir(parents=True, exist_ok=True)
    out_dir = out_dir.resolve()
    secrets = secret_files(app_dir)
    left_out: list[str] = []
    files = sorted(_walk(app_dir, out_dir, secrets, left_out), key=lambda item: item[0])
    _check_unpackable(app_dir, files, max_total_bytes, max_entries, max_file_bytes)
    fd, tmp_name = tempfile.mkstemp(prefix=".pack-", suffix=".tar.gz", dir=out_dir)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as raw:
            _write_archive(raw, app_dir, files)
        digest = sha256_file(tmp)
        final = out_dir / f"{digest}.tar.gz"
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return PackedBundle(
        path=final,
        sha256=digest,
        size=final.stat().st_size,
        files=len(files),
        names=frozenset(rel for rel, _ in files),
        secrets_left_out=tuple(sorted(left_out)),
    )


def _check_unpackable(
    root: Path, files: list[tuple[str, Path]], max_total_bytes: int, max_entries: int, max_file_bytes: int
) -> None:
    """Refuse the first file unpack would refuse, in archive order, with unpack's own words."""
    total = 0
    for count, (rel, path) in enumerate(files, 1):
        problem = rules.count_problem(count, max_entries) or rules.path_problem(rel)
        if problem is None:
            size = path.stat().st_size
            problem = rules.size_problem(size, total, max_file_bytes, max_total_bytes)
            total += size
        if problem is not None:
            raise BundleError(
                f"{root}: {rules.refusal(rel, problem)}; rename it, make it smaller or add it to "
                ".sproutignore (no instance could unpack this version)"
            )


def secret_files(app_dir: Path) -> frozenset[Path]:
    """The resolved paths of the files `file:` secrets of `app_dir`'s manifest name (`[secrets]` and
    the resources' `password`s); read from the raw TOML so that packing needs no validation."""
    try:
        # utf-8-sig: a byte order mark is skipped here as `load_manifest` skips it, so that a manifest
        # saved with one still keeps its secret files out of the bundle.
        data = tomllib.loads((app_dir / MANIFEST_NAME).read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return frozenset()
    refs: list[object] = []
    secrets = data.get("secrets")
    if isinstance(secrets, dict):
        refs.extend(secrets.values())
    resources = data.get("resources")
    for table in ("database", "sessions"):
        section = resources.get(table) if isinstance(resources, dict) else None
        if isinstance(section, dict):
            refs.append(section.get("password"))
    paths = set()
    for ref in refs:
        target = ref.get("file") if isinstance(ref, dict) else None
        if isinstance(ref, str) and ref.startswith("file:"):
            target = ref[len("file:") :]
        if isinstance(target, str) and target and "\0" not in target:
            paths.add(_real((app_dir / target).expanduser()))
    return frozenset(paths)


def _is_ignored(rel: str, is_dir: bool, rules: list[_Rules]) -> bool:
    """Whether the path `rel` (posix, relative to the app root) is excluded by the rules that apply."""
    probe = rel + "/" if is_dir else rel
    if _ALWAYS.match_file(probe):
        return True
    ignored = False
    # Deeper folders' rules come later in `rules` and override shallower ones, as in git.
    for rule in rules:
        if rule.base and not rel.startswith(rule.base + "/"):
            continue
        local = rel[len(rule.base) + 1 :] if rule.base else rel
        result = rule.spec.check_file(local + "/" if is_dir else local)
        if result.include is not None:
            ignored = result.include
    return ignored


def _walk(
    root: Path, out_dir: Path, secrets: frozenset[Path], left_out: list[str]
) -> Iterator[tuple[str, Path]]:
    """Yield (archive name, source path) for every regular file to pack; secret files go to `left_out`."""
    stack: list[tuple[Path, str, list[_Rules]]] = [(root, "", [])]
    while stack:
        folder, rel_folder, inherited = stack.pop()
        rules = inherited + _read_rules(folder, rel_folder)
        with os.scandir(folder) as entries:
            children = sorted(entries, key=lambda e: e.name)
        for entry in children:
            rel = f"{rel_folder}/{entry.name}" if rel_folder else entry.name
            path = Path(entry.path)
            if path == out_dir:
                continue
            if secrets and _real(path) in secrets:
                left_out.append(rel)
                continue
            if entry.is_symlink():
                # Decided before the link is checked: an ignored link may point anywhere, even nowhere or
                # at itself (os.path.isdir says False for those instead of raising).
                if _is_ignored(rel, False, rules) or (os.path.isdir(path) and _is_ignored(rel, True, rules)):
                    continue
                if _check_symlink(root, path, rel):
                    raise BundleError(
                        f"{root}: {rel} is a symlink to a folder; bundles hold regular files only, "
                        "so replace it with the folder itself or add it to .sproutignore"
                    )
                yield rel, path
            elif entry.is_dir(follow_symlinks=False):
                if not _is_ignored(rel, True, rules):
                    stack.append((path, rel, rules))
            elif entry.is_file(follow_symlinks=False):
                if not _is_ignored(rel, False, rules):
                    yield rel, path
            elif not _is_ignored(rel, False, rules):
                raise BundleError(
                    f"{root}: {rel} is not a regular file (socket, FIFO or device); "
                    "remove it or add it to .sproutignore"
                )


def _real(path: Path) -> Path:
    """`path` with every symlink resolved; a broken or looping link resolves as far as it goes (where
    `Path.resolve` raises RuntimeError on a loop)."""
    return Path(os.path.realpath(path))


def _read_rules(folder: Path, rel_folder: str) -> list[_Rules]:
    """The ignore rules declared in `folder` (.gitignore, then .sproutignore, which wins on conflict)."""
    lines: list[str] = []
    for name in IGNORE_FILES:
        path = folder / name
        if path.is_file():
            lines.extend(path.read_text(encoding="utf-8", errors="replace").splitlines())
    if not lines:
        return []
    return [_Rules(base=rel_folder, spec=pathspec.GitIgnoreSpec.from_lines(lines))]


def _check_symlink(root: Path, path: Path, rel: str) -> bool:
    """Refuse a symlink that is broken or points outside the tree; return whether it points to a folder."""
    try:
        # realpath, not Path.resolve: that raises RuntimeError on a loop in Python 3.11 and OSError later.
        target = Path(os.path.realpath(path, strict=True))
    except OSError as exc:
        link = _link_text(path)
        if exc.errno == errno.ELOOP:
            problem = f"a looping symlink (to {link!r})"
        elif exc.errno in (errno.ENOENT, errno.ENOTDIR):
            problem = f"a broken symlink (to {link!r})"
        else:
            problem = f"a symlink that cannot be followed (to {link!r}: {exc.strerror})"
        raise BundleError(f"{root}: {rel} is {problem}; fix it or add it to .sproutignore") from exc
    if not target.is_relative_to(root):
        raise BundleError(
            f"{root}: {rel} is a symlink to {target}, outside the app folder; "
            "copy the file into the app or add the link to .sproutignore"
        )
    return target.is_dir()


def _link_text(path: Path) -> str:
    """What the symlink `path` says it points to, as written."""
    try:
        return os.readlink(path)
    except OSError:
        return "?"


def _write_archive(raw: BinaryIO, root: Path, files: list[tuple[str, Path]]) -> None:
    """Write `files` as a tar stream with normalised metadata through a timestamp-free gzip layer."""
    with (
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT, encoding="utf-8") as tar,
    ):
        for name, path in files:
            try:
                with open(path, "rb") as source:
                    st = os.fstat(source.fileno())
                    info = tarfile.TarInfo(name)
                    info.size = st.st_size
                    info.mtime = FIXED_MTIME
                    info.mode = 0o755 if st.st_mode & stat.S_IXUSR else 0o644
                    info.uid = info.gid = 0
                    info.uname = info.gname = ""
                    tar.addfile(info, source)
            except OSError as exc:
                raise BundleError(
                    f"{root}: cannot pack {name}: {exc}; check it is readable and not changing"
                ) from exc

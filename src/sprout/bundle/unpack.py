"""Unpack an untrusted version bundle safely: verify, validate every entry, write only what we create.

The story: check the archive's sha256 before parsing a byte of it; then stream it once through our own
gzip reader (which caps the decompressed size, so a gzip bomb stops early) and tarfile in stream mode;
validate each member ourselves (type, path, mode bits, duplicates, limits) and copy its data with
`os.open(O_CREAT | O_EXCL | O_NOFOLLOW)` relative to directory descriptors of a fresh private temp folder
beside `dest`. The archive is hashed again while it streams, so a file swapped after the first check is
caught. Only when everything passed is the temp folder renamed to `dest`; on any failure it is removed.

tarfile's extraction filters are deliberately unused: they have had bypasses (CVE-2025-4517 family),
and nothing here ever lets tarfile touch the filesystem.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import stat
import tarfile
import tempfile
import zlib
from pathlib import Path
from typing import IO

from sprout.bundle import rules
from sprout.bundle.digest import CHUNK, check_sha256
from sprout.bundle.rules import MAX_ENTRIES, MAX_FILE_BYTES, MAX_TOTAL_BYTES
from sprout.errors import BundleError

# Honest headers (ustar, pax records, GNU long names) are a few KiB; anything bigger is an attack.
HEADER_BYTES = 1024**2
# Tar headers, pax records and padding around each entry; generous so honest archives never hit it.
_OVERHEAD_PER_ENTRY = 8 * 1024
_SPECIAL_BITS = stat.S_ISUID | stat.S_ISGID | stat.S_ISVTX
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class _HashingReader:
    """A read-only stream that hashes every byte it hands out."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self.digest = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self.digest.update(data)
        return data

    def drain(self) -> str:
        """Read to the end (trailing bytes count too) and return the hex digest."""
        while self.read(CHUNK):
            pass
        return self.digest.hexdigest()


class _CappedReader:
    """A read-only stream that refuses to hand out more than `cap` bytes in total.

    While `header_budget` is set (tarfile is parsing headers), it also refuses more than that many bytes:
    tarfile buffers a pax or GNU long-name header whole, so a header claiming a gigabyte of (highly
    compressible) data would otherwise be held in memory before any check of ours could run.
    """

    def __init__(self, raw: IO[bytes], cap: int, bundle: str) -> None:
        self._raw = raw
        self._left = cap
        self._cap = cap
        self._bundle = bundle
        self.header_budget: int | None = None

    def read(self, size: int = -1) -> bytes:
        # Never ask the decompressor for more than the allowance (+1 to notice going over).
        want = self._left + 1 if size < 0 else min(size, self._left + 1)
        if self.header_budget is not None:
            want = min(want, self.header_budget + 1)
        data = self._raw.read(want)
        self._left -= len(data)
        if self._left < 0:
            raise BundleError(
                f"bundle {self._bundle}: decompresses to more than {self._cap} bytes "
                "(a gzip bomb or a bundle over the size limit); rebuild it smaller"
            )
        if self.header_budget is not None:
            self.header_budget -= len(data)
            if self.header_budget < 0:
                raise BundleError(
                    f"bundle {self._bundle}: a tar header is larger than {HEADER_BYTES} bytes "
                    "(a header bomb); the bundle is rejected"
                )
        return data


def safe_unpack(
    archive: Path,
    dest: Path,
    *,
    expected_sha256: str | None,
    max_total_bytes: int = MAX_TOTAL_BYTES,
    max_entries: int = MAX_ENTRIES,
    max_file_bytes: int = MAX_FILE_BYTES,
) -> None:
    """Verify `archive` against `expected_sha256` and unpack it into the new folder `dest`, atomically."""
    bundle = archive.name
    if expected_sha256 is not None:
        check_sha256(expected_sha256)
    if os.path.lexists(dest):
        raise BundleError(
            f"bundle {bundle}: destination {dest} already exists; unpack into a new folder "
            "(an existing folder is never merged into)"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        source = open(archive, "rb")  # noqa: SIM115 - closed in the finally below, after two passes
    except OSError as exc:
        raise BundleError(f"bundle {bundle}: cannot open {archive}: {exc}") from exc
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.unpack-", dir=dest.parent))
    try:
        if expected_sha256 is not None:
            _verify(source, bundle, expected_sha256)
            source.seek(0)
        hashing = _HashingReader(source)
        limits = _Limits(max_total_bytes, max_entries, max_file_bytes)
        _extract(hashing, tmp, bundle, limits)
        if expected_sha256 is not None and hashing.drain() != expected_sha256:
            raise BundleError(f"bundle {bundle}: changed on disk while unpacking; fetch it again")
        os.chmod(tmp, 0o755)
        try:
            os.rename(tmp, dest)
        except OSError as exc:
            raise BundleError(
                f"bundle {bundle}: cannot move the unpacked folder to {dest}: {exc}; "
                "another unpack of the same folder probably won the race"
            ) from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        source.close()


def _verify(source: IO[bytes], bundle: str, expected: str) -> None:
    """Raise BundleError unless the stream's sha256 is `expected`."""
    digest = hashlib.sha256()
    while chunk := source.read(CHUNK):
        digest.update(chunk)
    actual = digest.hexdigest()
    if actual != expected:
        raise BundleError(
            f"bundle {bundle}: sha256 mismatch (expected {expected}, got {actual}); "
            "the bundle is corrupt or was tampered with, fetch it again from the artifact store"
        )


class _Limits:
    """The size and count limits for one unpack, and what has been used so far."""

    def __init__(self, max_total_bytes: int, max_entries: int, max_file_bytes: int) -> None:
        self.max_total_bytes = max_total_bytes
        self.max_entries = max_entries
        self.max_file_bytes = max_file_bytes
        self.total_bytes = 0
        self.entries = 0

    @property
    def stream_cap(self) -> int:
        """How many decompressed tar bytes an archive within these limits can possibly need."""
        return self.max_total_bytes + (self.max_entries + 2) * _OVERHEAD_PER_ENTRY


def _extract(source: _HashingReader, tmp: Path, bundle: str, limits: _Limits) -> None:
    """Stream the archive's members into `tmp`, validating each one before it is written."""
    gz = gzip.GzipFile(fileobj=source, mode="rb")  # type: ignore[call-overload]
    capped = _CappedReader(gz, limits.stream_cap, bundle)
    root_fd = os.open(tmp, _DIR_FLAGS)
    kinds: dict[str, str] = {}
    try:
        capped.header_budget = HEADER_BYTES
        with tarfile.open(fileobj=capped, mode="r|", encoding="utf-8") as tar:  # type: ignore[call-overload]
            while True:
                capped.header_budget = HEADER_BYTES
                member = tar.next()
                capped.header_budget = None
                if member is None:
                    break
                limits.entries += 1
                problem = rules.count_problem(limits.entries, limits.max_entries)
                if problem is not None:
                    raise _rejected(bundle, member.name, problem)
                parts = _check_member(member, bundle, limits)
                _claim(kinds, parts, "dir" if member.isdir() else "file", member.name, bundle)
                if member.isdir():
                    os.close(_open_dirs(root_fd, parts, bundle, member.name))
                else:
                    _write_file(root_fd, parts, tar, member, bundle, limits)
        # gzip only validates its CRC and length once the stream is read to the very end.
        while capped.read(CHUNK):
            pass
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise BundleError(
            f"bundle {bundle}: corrupt or truncated archive ({exc}); fetch or push it again"
        ) from exc
    finally:
        os.close(root_fd)


def _check_member(member: tarfile.TarInfo, bundle: str, limits: _Limits) -> list[str]:
    """Validate one member's type, path, mode and size; return its normalised path components."""
    name = member.name

    def reject(problem: str) -> BundleError:
        return _rejected(bundle, name, problem)

    if member.issym():
        raise reject(f"is a symlink (to {member.linkname!r}); bundles hold regular files and folders only")
    if member.islnk():
        raise reject(f"is a hardlink (to {member.linkname!r}); bundles hold regular files and folders only")
    if member.ischr() or member.isblk():
        raise reject("is a device file; bundles hold regular files and folders only")
    if member.isfifo():
        raise reject("is a FIFO; bundles hold regular files and folders only")
    if member.issparse():
        raise reject("is a sparse file; bundles hold plain regular files only")
    if not (member.isreg() or member.isdir()):
        raise reject(f"has unsupported type {member.type!r}; bundles hold regular files and folders only")
    if member.mode & _SPECIAL_BITS:
        raise reject(f"has setuid, setgid or sticky bits (mode {member.mode:o}), which are never allowed")
    problem = rules.path_problem(name)
    if problem is None and member.isreg():
        problem = rules.size_problem(
            member.size, limits.total_bytes, limits.max_file_bytes, limits.max_total_bytes
        )
    if problem is not None:
        raise reject(problem)
    parts = [p for p in name.split("/") if p not in ("", ".")]
    return parts


def _rejected(bundle: str, name: str, problem: str) -> BundleError:
    return BundleError(f"bundle {bundle}: {rules.refusal(name, problem)}; the bundle is rejected")


def _claim(kinds: dict[str, str], parts: list[str], kind: str, name: str, bundle: str) -> None:
    """Record that `parts` is a file or folder; refuse duplicates and file/folder conflicts."""
    for depth in range(1, len(parts)):
        parent = "/".join(parts[:depth])
        if kinds.setdefault(parent, "implied") == "file":
            raise BundleError(
                f"bundle {bundle}: entry {name!r}: its parent {parent!r} is a file; the bundle is rejected"
            )
    path = "/".join(parts)
    seen = kinds.get(path)
    if seen == "implied":
        if kind == "file":
            raise BundleError(
                f"bundle {bundle}: entry {name!r}: is a file, but earlier entries put files inside "
                f"{path!r}; the bundle is rejected"
            )
        kinds[path] = "dir"
        return
    if seen is not None:
        raise BundleError(
            f"bundle {bundle}: entry {name!r}: duplicate entry for {path!r}; the bundle is rejected"
        )
    kinds[path] = kind


def _open_dirs(root_fd: int, parts: list[str], bundle: str, name: str) -> int:
    """Create (if needed) and open the folder `parts` under root_fd without following any symlink."""
    fd = os.dup(root_fd)
    try:
        for part in parts:
            try:
                os.mkdir(part, 0o700, dir_fd=fd)
                created = True
            except FileExistsError:
                created = False
            child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = child
            if created:
                os.fchmod(fd, 0o755)
    except OSError as exc:
        os.close(fd)
        raise BundleError(f"bundle {bundle}: entry {name!r}: cannot create folder: {exc}") from exc
    return fd


def _write_file(
    root_fd: int,
    parts: list[str],
    tar: tarfile.TarFile,
    member: tarfile.TarInfo,
    bundle: str,
    limits: _Limits,
) -> None:
    """Copy one regular member's data into a new file, counting bytes against the limits as they flow."""
    name = member.name
    parent_fd = _open_dirs(root_fd, parts[:-1], bundle, name)
    try:
        data = tar.extractfile(member)
        if data is None:
            raise BundleError(f"bundle {bundle}: entry {name!r}: has no data; the bundle is rejected")
        try:
            fd = os.open(parts[-1], _FILE_FLAGS, 0o600, dir_fd=parent_fd)
        except OSError as exc:
            raise BundleError(f"bundle {bundle}: entry {name!r}: cannot create file: {exc}") from exc
        written = 0
        with os.fdopen(fd, "wb") as out:
            while chunk := data.read(CHUNK):
                written += len(chunk)
                limits.total_bytes += len(chunk)
                if written > limits.max_file_bytes or limits.total_bytes > limits.max_total_bytes:
                    raise BundleError(
                        f"bundle {bundle}: entry {name!r}: unpacks to more than the limits allow "
                        f"({limits.max_file_bytes} bytes per file, {limits.max_total_bytes} in total); "
                        "the bundle is rejected"
                    )
                out.write(chunk)
            os.fchmod(out.fileno(), 0o755 if member.mode & stat.S_IXUSR else 0o644)
    finally:
        os.close(parent_fd)

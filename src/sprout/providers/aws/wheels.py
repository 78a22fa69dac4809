"""The running Sprout as artifacts an instance installs offline: its wheel and a wheelhouse of its dependencies.

Nothing on an instance installs Sprout by name from a package index (the name could be anyone's). The
wheel is built from the very files this process imports (an editable checkout or an installed copy);
the wheelhouse re-packs the installed distributions Sprout needs at run time, with the tags they were
installed with. Both are deterministic zips, so the same code always hashes to the same sha256, and
both are stored content-addressed next to the bundles. The instance runs the same Python minor version
on the same platform (Linux x86_64), which is why they are built only there.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import platform
import re
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from sprout.errors import UserError
from sprout.providers.aws.clients import error_code, reported

DISTRIBUTION = "sprout-deploy"
#: Every file in a built zip gets this timestamp, so equal content zips to equal bytes.
EPOCH = (1980, 1, 1, 0, 0, 0)
_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?[^;]*(?:;(.*))?$")
_EXTRA = re.compile(r"""extra\s*==\s*["']([^"']+)["']""")
_SKIPPED_META = {"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"}
#: The cache folder that keeps the last wheelhouse built, named by the digest of what it was built from.
WHEELHOUSE_CACHE = "aws-wheelhouse"


@dataclass(frozen=True)
class Runtime:
    """The wheel and wheelhouse of the running Sprout: store keys (under the app prefix) and sha256s."""

    python: str
    wheel_key: str
    wheel_sha256: str
    wheelhouse_key: str
    wheelhouse_sha256: str


def normalize(name: str) -> str:
    """A distribution name as wheel file names and comparisons spell it."""
    return re.sub(r"[-_.]+", "_", name).lower()


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def _zip(files: dict[str, bytes], dist_info: str) -> bytes:
    """A wheel's bytes: `files` plus a fresh RECORD, in sorted order with fixed timestamps."""
    record = [f"{name},{_record_hash(data)},{len(data)}" for name, data in sorted(files.items())]
    record.append(f"{dist_info}/RECORD,,")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in [
            *sorted(files.items()),
            (f"{dist_info}/RECORD", "\n".join(record).encode() + b"\n"),
        ]:
            info = zipfile.ZipInfo(name, EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return out.getvalue()


def _wanted(path: str) -> bool:
    parts = path.split("/")
    return "__pycache__" not in parts and not path.endswith(".pyc") and ".." not in parts


def sprout_wheel() -> tuple[str, bytes]:
    """The running Sprout as a pure-Python wheel: (file name, bytes)."""
    import sprout

    dist = metadata.distribution(DISTRIBUTION)
    version = dist.version
    dist_info = f"{normalize(DISTRIBUTION)}-{version}.dist-info"
    package = Path(sprout.__file__).parent
    files = {
        f"sprout/{p.relative_to(package).as_posix()}": p.read_bytes()
        for p in sorted(package.rglob("*"))
        if p.is_file() and _wanted(p.relative_to(package).as_posix())
    }
    for name in ("METADATA", "entry_points.txt"):
        text = dist.read_text(name)
        if text is None:
            raise UserError(
                f"{DISTRIBUTION}: the installed copy has no {name}; reinstall Sprout (make setup)"
            )
        files[f"{dist_info}/{name}"] = text.encode()
    files[f"{dist_info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: sprout\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    return f"{normalize(DISTRIBUTION)}-{version}-py3-none-any.whl", _zip(files, dist_info)


def _requirements(dist: metadata.Distribution, extras: set[str]) -> list[tuple[str, set[str], bool]]:
    """(name, extras, installed-or-needed) of each requirement that applies to `extras`."""
    found = []
    for line in dist.requires or []:
        match = _REQUIREMENT.match(line)
        if not match:
            continue
        name, wanted, marker = match.group(1), match.group(2) or "", match.group(3) or ""
        extra = _EXTRA.search(marker)
        if extra and extra.group(1) not in extras:
            continue
        # A requirement with a marker may be meant for another platform or Python: needed only if installed.
        found.append((name, {e.strip() for e in wanted.split(",") if e.strip()}, not marker.strip()))
    return found


def closure(root: str = DISTRIBUTION) -> list[metadata.Distribution]:
    """The installed distributions `root` needs at run time (without `root`), sorted by name."""
    seen: dict[str, metadata.Distribution] = {}
    todo: list[tuple[str, set[str], bool]] = [
        (r[0], r[1], r[2]) for r in _requirements(metadata.distribution(root), set())
    ]
    while todo:
        name, extras, required = todo.pop()
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            if required:
                raise UserError(
                    f"{root} needs {name}, which is not installed here; reinstall Sprout (make setup)"
                ) from None
            continue
        key = normalize(dist.metadata["Name"])
        if key in seen and not extras:
            continue
        seen[key] = dist
        todo.extend(_requirements(dist, extras))
    return [seen[k] for k in sorted(seen)]


def repack(dist: metadata.Distribution) -> tuple[str, bytes]:
    """An installed distribution back as a wheel with the tag it was installed with: (file name, bytes)."""
    name, version = dist.metadata["Name"], dist.version
    wheel_meta = dist.read_text("WHEEL") or ""
    tags = [line.split(":", 1)[1].strip() for line in wheel_meta.splitlines() if line.startswith("Tag:")]
    if not tags:
        raise UserError(f"{name} {version}: installed without wheel tags; reinstall it with pip")
    files: dict[str, bytes] = {}
    for item in dist.files or []:
        path = item.as_posix()
        dist_info_file = path.split("/")[0].endswith(".dist-info") and path.split("/")[-1] in _SKIPPED_META
        if not _wanted(path) or dist_info_file:
            continue
        located = Path(str(dist.locate_file(item)))
        if located.is_file():
            files[path] = located.read_bytes()
    dist_info = next((p.split("/")[0] for p in files if p.split("/")[0].endswith(".dist-info")), None)
    if dist_info is None:
        raise UserError(f"{name} {version}: its installed files list no .dist-info; reinstall it with pip")
    return f"{normalize(name)}-{version}-{compressed(tags)}.whl", _zip(files, dist_info)


def compressed(tags: list[str]) -> str:
    """A wheel file name's tag part for these tags (`py2-none-any` + `py3-none-any` → `py2.py3-none-any`)."""
    parts = [tag.split("-") for tag in tags]
    return "-".join(".".join(dict.fromkeys(p[i] for p in parts)) for i in range(3))


def check_platform() -> str:
    """The instances' Python (`python3.X`); the wheelhouse is built for this platform only."""
    if sys.platform != "linux" or platform.machine() != "x86_64":
        raise UserError(
            f"aws: the instances install the Python packages installed here, but this is {sys.platform} "
            f"{platform.machine()}, not Linux x86_64; run `sprout aws up/deploy` from a Linux x86_64 "
            "machine (a CI job)"
        )
    return f"python3.{sys.version_info.minor}"


def wheelhouse(dists: list[metadata.Distribution]) -> bytes:
    """One uncompressed tar of the dependencies' wheels (wheels are compressed already), deterministic."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in sorted(repack(d) for d in dists):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def installed_digest(dists: list[metadata.Distribution]) -> str:
    """A digest of what `wheelhouse(dists)` is built from: this module, and each installed file's path,
    size and modification time (a reinstall or an edit changes them)."""
    digest = hashlib.sha256(Path(__file__).read_bytes())
    for dist in dists:
        digest.update(f"{dist.metadata['Name']}\0{dist.version}\n".encode())
        for item in dist.files or []:
            try:
                st = os.stat(str(dist.locate_file(item)))
            except OSError:
                digest.update(f"{item}\0-\n".encode())
                continue
            digest.update(f"{item}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def cached_wheelhouse(dists: list[metadata.Distribution], cache: Path) -> bytes:
    """`wheelhouse(dists)`, reused from `cache` while the installed files are unchanged: re-packing
    every dependency costs seconds of compression on each render, plan, up and deploy."""
    folder = cache / WHEELHOUSE_CACHE
    kept = folder / f"{installed_digest(dists)}.tar"
    try:
        return kept.read_bytes()
    except FileNotFoundError:
        pass
    house = wheelhouse(dists)
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f".{kept.name}.{os.getpid()}"
    partial.write_bytes(house)
    os.replace(partial, kept)
    for older in folder.glob("*.tar"):
        if older != kept:
            older.unlink(missing_ok=True)
    return house


def build_runtime(out: Path, cache: Path | None = None) -> tuple[Runtime, dict[str, Path]]:
    """Build the wheel and wheelhouse into `out` (the wheelhouse reused from `cache` when it holds the
    one of the installed files); return the Runtime and the files by store key."""
    python = check_platform()
    name, wheel = sprout_wheel()
    dists = closure()
    house = wheelhouse(dists) if cache is None else cached_wheelhouse(dists, cache)
    wheel_sha = hashlib.sha256(wheel).hexdigest()
    house_sha = hashlib.sha256(house).hexdigest()
    runtime = Runtime(
        python=python,
        wheel_key=f"sprout/{wheel_sha}/{name}",
        wheel_sha256=wheel_sha,
        wheelhouse_key=f"sprout/{house_sha}/wheelhouse.tar",
        wheelhouse_sha256=house_sha,
    )
    out.mkdir(parents=True, exist_ok=True)
    (out / name).write_bytes(wheel)
    (out / "wheelhouse.tar").write_bytes(house)
    return runtime, {runtime.wheel_key: out / name, runtime.wheelhouse_key: out / "wheelhouse.tar"}


def upload(s3: Any, bucket: str, prefix: str, files: dict[str, Path]) -> None:
    """Store the runtime's files under `prefix`, skipping those already there (their keys hold their hash)."""
    for key, path in files.items():
        full = f"{prefix}/{key}"
        with reported(f"s3://{bucket}/{full}", "check the bucket's permissions and run the command again"):
            try:
                s3.head_object(Bucket=bucket, Key=full)
                continue
            except Exception as exc:
                if error_code(exc) not in ("404", "NoSuchKey", "NotFound"):
                    raise
            s3.upload_file(str(path), bucket, full)

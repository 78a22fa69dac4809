"""Artifact stores: content-addressed bundle storage in a folder or S3, and their lifecycle.

Every bundle lives under the key `bundles/<sha256>.tar.gz`. `put` is idempotent (the same content is
stored once), and `get` always re-hashes what it fetched, so a corrupt or tampered copy never reaches
an instance. `open_store` picks the implementation from a URL: `file:///abs/path`, a plain path, or
`s3://bucket/prefix`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import unquote, urlparse

from sprout.bundle.digest import CHUNK, check_sha256, sha256_file
from sprout.errors import BundleError, NotFoundError, ServiceError, UserError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

KEY_PREFIX = "bundles/"
SUFFIX = ".tar.gz"


class ArtifactStore(Protocol):
    """Where version bundles live, addressed by their sha256."""

    @property
    def url(self) -> str:
        """The URL that `open_store` turns back into this store."""
        ...

    def put(self, path: Path) -> str:
        """Store the bundle file at `path` (once per content) and return its sha256."""
        ...

    def get(self, sha256: str, dest: Path) -> Path:
        """Fetch bundle `sha256` to `dest` (a file, or a folder to put `<sha256>.tar.gz` in); verify it."""
        ...

    def exists(self, sha256: str) -> bool:
        """Whether bundle `sha256` is stored."""
        ...

    def delete(self, sha256: str) -> None:
        """Remove bundle `sha256`; removing a missing bundle is not an error."""
        ...

    def list(self) -> list[str]:
        """The sha256 of every stored bundle, sorted."""
        ...


def bundle_key(sha256: str) -> str:
    """The store key of bundle `sha256`: `bundles/<sha256>.tar.gz`."""
    return f"{KEY_PREFIX}{check_sha256(sha256)}{SUFFIX}"


def _target_file(sha256: str, dest: Path) -> Path:
    """Where `get` writes: inside `dest` if it is a folder, else `dest` itself."""
    return dest / f"{sha256}{SUFFIX}" if dest.is_dir() else dest


def _verify_download(tmp: Path, sha256: str, source: str) -> None:
    """Raise BundleError (and remove `tmp`) unless the downloaded file hashes to `sha256`."""
    actual = sha256_file(tmp)
    if actual != sha256:
        tmp.unlink(missing_ok=True)
        raise BundleError(
            f"bundle {sha256}{SUFFIX} from {source}: sha256 mismatch (got {actual}); the stored copy is "
            "corrupt or was tampered with, push the version again"
        )


class FolderStore:
    """Bundles as files under a local folder: `<root>/bundles/<sha256>.tar.gz`."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    @property
    def url(self) -> str:
        """This store as a `file://` URL."""
        return self.root.as_uri()

    def _path(self, sha256: str) -> Path:
        return self.root / bundle_key(sha256)

    def put(self, path: Path) -> str:
        """Copy the bundle in under its hash (atomically, once) and return the hash."""
        sha256 = sha256_file(path)
        final = self._path(sha256)
        if final.exists():
            return sha256
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=".put-", dir=final.parent)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out, open(path, "rb") as src:
                shutil.copyfileobj(src, out, CHUNK)
            _verify_download(tmp, sha256, str(path))
            # As readable as the user's other files (mkstemp's are 0600): 0644 by default, 0600 in a home.
            os.chmod(tmp, 0o644 & ~_umask())
            os.replace(tmp, final)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return sha256

    def get(self, sha256: str, dest: Path) -> Path:
        """Copy bundle `sha256` to `dest` and verify its hash."""
        source = self._path(sha256)
        if not source.exists():
            raise NotFoundError(
                f"bundle {sha256} is not in the artifact store {self.url}; push the version again"
            )
        target = _target_file(sha256, dest)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=".get-", dir=target.parent)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out, open(source, "rb") as src:
                shutil.copyfileobj(src, out, CHUNK)
            _verify_download(tmp, sha256, self.url)
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return target

    def exists(self, sha256: str) -> bool:
        """Whether the bundle file is present."""
        return self._path(sha256).is_file()

    def delete(self, sha256: str) -> None:
        """Remove the bundle file if present."""
        self._path(sha256).unlink(missing_ok=True)

    def list(self) -> list[str]:
        """Every stored bundle's hash, sorted."""
        folder = self.root / KEY_PREFIX
        if not folder.is_dir():
            return []
        return sorted(p.name[: -len(SUFFIX)] for p in folder.iterdir() if p.name.endswith(SUFFIX))


class S3Store:
    """Bundles as objects `<prefix>/bundles/<sha256>.tar.gz` in an S3 (or S3-compatible) bucket."""

    def __init__(self, bucket: str, prefix: str = "", client: S3Client | None = None) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self._client: S3Client = client if client is not None else _default_client()

    @property
    def url(self) -> str:
        """This store as an `s3://bucket/prefix` URL."""
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    def _key(self, sha256: str) -> str:
        key = bundle_key(sha256)
        return f"{self.prefix}/{key}" if self.prefix else key

    def put(self, path: Path) -> str:
        """Upload the bundle under its hash unless an object with that hash is already there."""
        sha256 = sha256_file(path)
        if self.exists(sha256):
            return sha256
        try:
            self._client.upload_file(
                str(path), self.bucket, self._key(sha256), ExtraArgs={"Metadata": {"sha256": sha256}}
            )
        except Exception as exc:
            raise _s3_failure(self.url, f"upload {sha256}", exc) from exc
        return sha256

    def get(self, sha256: str, dest: Path) -> Path:
        """Download bundle `sha256` to `dest` and verify its hash."""
        if not self.exists(sha256):
            raise NotFoundError(
                f"bundle {sha256} is not in the artifact store {self.url}; push the version again"
            )
        target = _target_file(sha256, dest)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=".get-", dir=target.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            try:
                self._client.download_file(self.bucket, self._key(sha256), str(tmp))
            except Exception as exc:
                raise _s3_failure(self.url, f"download {sha256}", exc) from exc
            _verify_download(tmp, sha256, self.url)
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return target

    def exists(self, sha256: str) -> bool:
        """Whether the object is present (a HEAD request)."""
        try:
            self._client.head_object(Bucket=self.bucket, Key=self._key(sha256))
        except Exception as exc:
            if _error_code(exc) in ("404", "NoSuchKey", "NotFound"):
                return False
            raise _s3_failure(self.url, f"check {sha256}", exc) from exc
        return True

    def delete(self, sha256: str) -> None:
        """Delete the object (S3 deletes of missing keys succeed)."""
        try:
            self._client.delete_object(Bucket=self.bucket, Key=self._key(sha256))
        except Exception as exc:
            raise _s3_failure(self.url, f"delete {sha256}", exc) from exc

    def list(self) -> list[str]:
        """Every stored bundle's hash, sorted (all pages)."""
        prefix = f"{self.prefix}/{KEY_PREFIX}" if self.prefix else KEY_PREFIX
        found: list[str] = []
        try:
            for page in self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix
            ):
                for obj in page.get("Contents", []):
                    name = obj.get("Key", "")[len(prefix) :]
                    if name.endswith(SUFFIX) and "/" not in name:
                        found.append(name[: -len(SUFFIX)])
        except Exception as exc:
            raise _s3_failure(self.url, "list bundles", exc) from exc
        return sorted(found)


def _default_client() -> S3Client:
    """A boto3 S3 client; `AWS_ENDPOINT_URL` points it at an S3-compatible server (MinIO, moto)."""
    import boto3

    client: S3Client = boto3.client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None)
    return client


def _error_code(exc: Exception) -> str:
    """The AWS error code of a botocore ClientError, or '' for anything else."""
    response: Any = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def _s3_failure(url: str, action: str, exc: Exception) -> ServiceError:
    """A ServiceError naming the store, the action and the S3 problem."""
    return ServiceError(
        f"artifact store {url}: cannot {action}: {exc}; check the bucket exists, the credentials "
        "and AWS_ENDPOINT_URL"
    )


def open_store(url: str) -> ArtifactStore:
    """The artifact store a URL names: `file:///abs/path`, a plain path, or `s3://bucket/prefix`."""
    parsed = urlparse(url)
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise UserError(f"artifact store {url!r}: no bucket; write it as s3://bucket/prefix")
        return S3Store(parsed.netloc, parsed.path.strip("/"))
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise UserError(f"artifact store {url!r}: file URLs must be local; write it as file:///abs/path")
        return FolderStore(Path(unquote(parsed.path)))
    if parsed.scheme and len(parsed.scheme) > 1:
        raise UserError(
            f"artifact store {url!r}: unknown scheme {parsed.scheme!r}; use a folder path, file:///abs/path "
            "or s3://bucket/prefix"
        )
    return FolderStore(Path(url).expanduser())


def prune(store: ArtifactStore, keep: int, in_use: set[str], ordered: list[str]) -> list[str]:
    """Delete all but the newest `keep` bundles not in use; `ordered` runs oldest to newest."""
    if keep < 0:
        raise UserError(f"artifact store {store.url}: keep must be 0 or more, not {keep}")
    candidates = [h for h in dict.fromkeys(ordered) if h not in in_use]
    doomed = candidates[: max(0, len(candidates) - keep)]
    deleted: list[str] = []
    for sha256 in doomed:
        if store.exists(sha256):
            store.delete(sha256)
            deleted.append(sha256)
    return deleted


def _umask() -> int:
    """This process's umask (reading it means setting it, so it is set straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask

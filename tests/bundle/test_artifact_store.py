"""Artifact stores: folder and S3 (against moto's real HTTP server) round trips, verification, lifecycle."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from sprout.bundle.pack import pack
from sprout.bundle.store import ArtifactStore, FolderStore, S3Store, open_store, prune
from sprout.errors import BundleError, NotFoundError, UserError

BUCKET = "sprout-artifacts"


def make_bundle(tmp_path: Path, text: str) -> tuple[Path, str]:
    app = tmp_path / f"app-{abs(hash(text))}"
    app.mkdir()
    (app / "app.py").write_text(text)
    bundle = pack(app, tmp_path / "packed")
    return bundle.path, bundle.sha256


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_env(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    client = boto3.client("s3", endpoint_url=moto_endpoint)
    existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
    if BUCKET not in existing:
        client.create_bucket(Bucket=BUCKET)
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for obj in page.get("Contents", []):
            client.delete_object(Bucket=BUCKET, Key=obj["Key"])
    return moto_endpoint


def round_trip(store: ArtifactStore, tmp_path: Path) -> None:
    path, sha = make_bundle(tmp_path, "print('v1')\n")
    other_path, other = make_bundle(tmp_path, "print('v2')\n")
    assert not store.exists(sha)
    assert store.put(path) == sha
    assert store.put(path) == sha, "put is idempotent"
    assert store.put(other_path) == other
    assert store.exists(sha)
    assert store.list() == sorted([sha, other])

    into_folder = tmp_path / "fetched"
    into_folder.mkdir()
    got = store.get(sha, into_folder)
    assert got == into_folder / f"{sha}.tar.gz"
    assert got.read_bytes() == path.read_bytes()
    as_file = store.get(other, tmp_path / "named" / "bundle.tar.gz")
    assert as_file.read_bytes() == other_path.read_bytes()

    store.delete(sha)
    store.delete(sha)
    assert not store.exists(sha)
    assert store.list() == [other]
    with pytest.raises(NotFoundError) as err:
        store.get(sha, into_folder)
    assert str(err.value) == f"bundle {sha} is not in the artifact store {store.url}; push the version again"


def test_folder_store_round_trip(tmp_path: Path) -> None:
    store = FolderStore(tmp_path / "artifacts")
    round_trip(store, tmp_path)
    assert [p.name for p in (tmp_path / "artifacts/bundles").iterdir()] == [f"{store.list()[0]}.tar.gz"]


def test_folder_store_get_verifies_the_hash(tmp_path: Path) -> None:
    store = FolderStore(tmp_path / "artifacts")
    path, sha = make_bundle(tmp_path, "print('v1')\n")
    store.put(path)
    stored = tmp_path / "artifacts" / "bundles" / f"{sha}.tar.gz"
    stored.write_bytes(stored.read_bytes() + b"tampered")
    dest = tmp_path / "fetched"
    dest.mkdir()
    with pytest.raises(BundleError) as err:
        store.get(sha, dest)
    assert str(err.value).startswith(f"bundle {sha}.tar.gz from {store.url}: sha256 mismatch (got ")
    assert str(err.value).endswith(
        "); the stored copy is corrupt or was tampered with, push the version again"
    )
    assert list(dest.iterdir()) == [], "a bad download leaves nothing behind"


def test_s3_store_round_trip_against_moto_server(s3_env: str, tmp_path: Path) -> None:
    store = open_store(f"s3://{BUCKET}/team/prod")
    assert isinstance(store, S3Store)
    assert store.url == f"s3://{BUCKET}/team/prod"
    round_trip(store, tmp_path)
    client = boto3.client("s3", endpoint_url=s3_env)
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert keys == [f"team/prod/bundles/{store.list()[0]}.tar.gz"]


def test_s3_store_get_verifies_the_hash(s3_env: str, tmp_path: Path) -> None:
    store = S3Store(BUCKET, "")
    path, sha = make_bundle(tmp_path, "print('v1')\n")
    store.put(path)
    client = boto3.client("s3", endpoint_url=s3_env)
    client.put_object(Bucket=BUCKET, Key=f"bundles/{sha}.tar.gz", Body=b"not the bundle")
    dest = tmp_path / "fetched"
    dest.mkdir()
    with pytest.raises(BundleError) as err:
        store.get(sha, dest)
    assert str(err.value).startswith(f"bundle {sha}.tar.gz from s3://{BUCKET}: sha256 mismatch (got ")
    assert list(dest.iterdir()) == []


def test_store_rejects_malformed_hashes(tmp_path: Path) -> None:
    with pytest.raises(BundleError) as err:
        FolderStore(tmp_path).exists("../../etc/passwd")
    assert str(err.value) == (
        "'../../etc/passwd' is not a sha256 (64 lowercase hex digits); use the hash `sprout push` printed"
    )


@pytest.mark.parametrize(
    ("url", "kind", "where"),
    [
        ("file:///srv/sprout/artifacts", FolderStore, "file:///srv/sprout/artifacts"),
        ("/srv/sprout/artifacts", FolderStore, "file:///srv/sprout/artifacts"),
        ("s3://bucket", S3Store, "s3://bucket"),
        ("s3://bucket/a/b/", S3Store, "s3://bucket/a/b"),
    ],
)
def test_open_store_urls(url: str, kind: type, where: str, s3_env: str) -> None:
    store = open_store(url)
    assert isinstance(store, kind)
    assert store.url == where


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("s3:///prefix", "artifact store 's3:///prefix': no bucket; write it as s3://bucket/prefix"),
        (
            "file://host/x",
            "artifact store 'file://host/x': file URLs must be local; write it as file:///abs/path",
        ),
        (
            "gs://bucket/x",
            "artifact store 'gs://bucket/x': unknown scheme 'gs'; use a folder path, file:///abs/path "
            "or s3://bucket/prefix",
        ),
    ],
)
def test_open_store_rejects_bad_urls(url: str, message: str) -> None:
    with pytest.raises(UserError) as err:
        open_store(url)
    assert str(err.value) == message


H = [f"{i:064x}" for i in range(6)]


@pytest.mark.parametrize(
    ("keep", "in_use", "deleted"),
    [
        (2, set(), H[:4]),
        (2, {H[0]}, H[1:4]),
        (2, {H[5]}, H[:3]),
        (0, {H[2]}, [H[0], H[1], H[3], H[4], H[5]]),
        (10, set(), []),
        (1, set(H), []),
    ],
    ids=[
        "keep-last-2",
        "oldest-in-use-is-kept",
        "newest-in-use-not-counted",
        "keep-none",
        "few",
        "all-in-use",
    ],
)
def test_prune_keeps_the_last_n_versions_not_in_use(
    keep: int, in_use: set[str], deleted: list[str], tmp_path: Path
) -> None:
    store = FolderStore(tmp_path)
    folder = tmp_path / "bundles"
    folder.mkdir()
    for sha in H:
        (folder / f"{sha}.tar.gz").write_bytes(b"x")
    unrelated = "f" * 64
    (folder / f"{unrelated}.tar.gz").write_bytes(b"x")
    assert prune(store, keep, in_use, H) == deleted
    assert store.list() == sorted([h for h in H if h not in deleted] + [unrelated])


def test_prune_rejects_negative_keep(tmp_path: Path) -> None:
    store = FolderStore(tmp_path)
    with pytest.raises(UserError) as err:
        prune(store, -1, set(), [])
    assert str(err.value) == f"artifact store {store.url}: keep must be 0 or more, not -1"

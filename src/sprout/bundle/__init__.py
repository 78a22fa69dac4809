"""Version bundles: deterministic packing, content-addressed artifact stores, and safe unpacking."""

from sprout.bundle.pack import PackedBundle, pack
from sprout.bundle.store import ArtifactStore, FolderStore, S3Store, open_store, prune
from sprout.bundle.unpack import safe_unpack

__all__ = [
    "ArtifactStore",
    "FolderStore",
    "PackedBundle",
    "S3Store",
    "open_store",
    "pack",
    "prune",
    "safe_unpack",
]

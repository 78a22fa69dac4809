"""`sprout push`: pack the app folder into a version bundle, store it, and record it as `vN`."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import typer

from sprout.errors import ManifestError
from sprout.paths import Home
from sprout.spec.source import manifest_path, source_key

if TYPE_CHECKING:
    from sprout.state import StateStore

APP_DIR = typer.Argument(Path("."), help="The app folder (default: the current folder).", show_default=False)


@dataclass(frozen=True)
class PushResult:
    """What a push did: the version, its bundle, and whether the content was already known."""

    app: str
    version: str
    sha256: str
    size: int
    files: int
    store_url: str
    unchanged: bool
    secrets_left_out: tuple[str, ...] = ()

    def describe(self) -> str:
        """One line for people: `pushed microsite v3 (sha256 abcd1234…, 12.3 KiB, 42 files)`."""
        if self.unchanged:
            line = f"unchanged: {self.version} (same content as {self.app} {self.version}, sha256 {self.sha256[:12]}…)"
        else:
            line = (
                f"pushed {self.app} {self.version} "
                f"(sha256 {self.sha256[:12]}…, {human_size(self.size)}, {self.files} file{'' if self.files == 1 else 's'})"
            )
        if self.secrets_left_out:
            line += f"\nnot packed (file: secrets never enter a bundle): {', '.join(self.secrets_left_out)}"
        return line


def push(app_dir: Path, home: Home, store_url: str | None = None) -> PushResult:
    """Pack `app_dir`, put the bundle into the artifact store and record the version in the state store."""
    from sprout.bundle import open_store, pack
    from sprout.state import StateStore

    store = open_store(store_url or str(home.artifacts))
    state = StateStore(home.state_db)
    try:
        source, manifest = validated(app_dir, state)
        name, install_inputs = manifest["app"]["name"], manifest["app"].get("install_inputs")
        with tempfile.TemporaryDirectory(prefix=".push-", dir=home.root) as scratch:
            packed = pack(app_dir, Path(scratch))
            check_install_inputs(manifest_path(app_dir), install_inputs, packed.names)
            known = state.version_by_sha(name, packed.sha256)
            if not store.exists(packed.sha256):
                store.put(packed.path)
        version = known or state.add_version(
            name,
            packed.sha256,
            packed.size,
            json.dumps(manifest, sort_keys=True),
            store_url=store.url,
            manifest_source=source,
        )
    finally:
        state.close()
    return PushResult(
        app=name,
        version=version.label,
        sha256=packed.sha256,
        size=packed.size,
        files=packed.files,
        store_url=store.url,
        unchanged=known is not None,
        secrets_left_out=packed.secrets_left_out,
    )


def validated(app_dir: Path, state: StateStore) -> tuple[str | None, dict[str, Any]]:
    """The folder's manifest as validated data, and its source key (None when it cannot be read).

    A manifest byte-identical to one validated before is taken from the state store without
    loading the models; any other is validated now, from the same bytes (errors name file and field).
    """
    from_file = manifest_path(app_dir)
    try:
        raw: bytes | None = from_file.read_bytes()
    except OSError:
        raw = None  # load_manifest reports the missing or unreadable file
    source = source_key(raw) if raw is not None else None
    known = state.validated_manifest(source) if source is not None else None
    if known is not None:
        return source, dict(json.loads(known))
    from sprout.spec import load_manifest

    return source, load_manifest(app_dir, raw).model_dump(mode="json")


def check_install_inputs(
    source: Path, inputs: tuple[str, ...] | list[str] | None, names: frozenset[str]
) -> None:
    """Refuse a bundle without a file its dependency layer is keyed by (every instance would fail)."""
    missing = [name for name in inputs or () if PurePosixPath(name).as_posix() not in names]
    if missing:
        raise ManifestError(
            str(source),
            [
                f"app.install_inputs: {name!r} is not in the bundle (missing, or excluded by .gitignore "
                "or .sproutignore); add the file or remove it from install_inputs"
                for name in missing
            ],
        )


def human_size(size: float) -> str:
    """Bytes as `812 B`, `12.3 KiB`, `4.0 MiB`."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def register(app: typer.Typer) -> None:
    """Add the `push` command."""

    @app.command("push")
    def push_command(
        app_dir: Path = APP_DIR,
        store: str | None = typer.Option(
            None,
            "--store",
            envvar="SPROUT_STORE",
            help="Artifact store URL: a folder, file:///path or s3://bucket/prefix (default: SPROUT_HOME).",
        ),
        as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    ) -> None:
        """Pack the app folder into a version bundle (v1, v2, …); identical content reuses its version."""
        result = push(app_dir, Home.from_env().ensure(), store)
        typer.echo(json.dumps(result.__dict__) if as_json else result.describe())

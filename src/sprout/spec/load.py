"""Loading a manifest file: TOML parsing, validation, and errors that name file, field and fix."""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from sprout.errors import ManifestError, UserError
from sprout.spec.models import Manifest

MANIFEST_NAME = "sprout.toml"


def manifest_path(app_dir: Path) -> Path:
    """The manifest of an app folder (or the file itself when given a file)."""
    return app_dir if app_dir.is_file() else app_dir / MANIFEST_NAME


def load_manifest(path: Path) -> Manifest:
    """Read and validate a manifest file; raise ManifestError listing every problem."""
    path = manifest_path(path)
    if not path.exists():
        raise UserError(f"{path}: no manifest here (create one with `sprout init`)")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ManifestError(str(path), [f"not UTF-8 text ({exc.reason} at byte {exc.start})"]) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError(str(path), [f"TOML syntax error: {exc}"]) from exc
    return parse_manifest(data, source=str(path))


def parse_manifest(data: Mapping[str, Any], source: str = MANIFEST_NAME) -> Manifest:
    """Validate already-parsed manifest data; `source` names it in errors."""
    try:
        return Manifest.model_validate(data)
    except ValidationError as exc:
        raise ManifestError(source, [_describe(error) for error in exc.errors()]) from exc


def _describe(error: ErrorDetails) -> str:
    """One error as `field.path: problem`, with a suggestion for misspelt keys."""
    loc = [str(part) for part in error["loc"]]
    where = "".join(f"[{part}]" if part.isdigit() else f".{part}" for part in loc).lstrip(".") or "(top level)"
    kind = error["type"]
    if kind == "extra_forbidden":
        parent, key = [p for p in loc[:-1] if not p.isdigit()], loc[-1]
        hint = _suggest(parent, key)
        parent_name = f"[{'.'.join(parent)}]" if parent else "the top level"
        return f"{where}: unknown key in {parent_name}{hint}"
    if kind == "missing":
        return f"{where}: required key is missing"
    message = error["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    if kind == "literal_error":
        expected = str(error.get("ctx", {}).get("expected", ""))
        choices = re.findall(r"'([^']*)'", expected)
        close = difflib.get_close_matches(str(error["input"]), choices, n=1, cutoff=0.6)
        hint = f'; did you mean "{close[0]}"?' if close else ""
        return f"{where}: {error['input']!r} is not one of {', '.join(choices)}{hint}"
    if kind in ("string_pattern_mismatch",) or kind.endswith("_type") or kind.endswith("_parsing"):
        message = f"{message} (got {error['input']!r})"
    return f"{where}: {message}"


def _suggest(parent: list[str], key: str) -> str:
    """`; did you mean "x"?` when a known key of the same table is close to `key`."""
    model: type[BaseModel] | None = Manifest
    skip_key = False
    for part in parent:
        if skip_key:
            skip_key = False
            continue
        if model is None or part not in model.model_fields:
            return ""
        annotation = model.model_fields[part].annotation
        skip_key = get_origin(annotation) is dict
        model = _model_in(annotation)
    if model is None:
        return ""
    close = difflib.get_close_matches(key, list(model.model_fields), n=1, cutoff=0.6)
    return f'; did you mean "{close[0]}"?' if close else ""


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model class inside an annotation such as `Model`, `list[Model]` or `dict[str, Model]`."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def resolve_secrets(manifest: Manifest, base_dir: Path, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The secrets' values, read now from the environment or files; never persisted by Sprout."""
    environ = os.environ if environ is None else environ
    values: dict[str, str] = {}
    for name, ref in manifest.secrets.items():
        if ref.env is not None:
            if ref.env not in environ:
                raise UserError(f"secrets.{name}: environment variable {ref.env} is not set (export it first)")
            values[name] = environ[ref.env]
        elif ref.file is not None:
            path = (base_dir / ref.file).expanduser()
            try:
                values[name] = path.read_text(encoding="utf-8").rstrip("\n")
            except OSError as exc:
                raise UserError(f"secrets.{name}: cannot read {path}: {exc.strerror}") from exc
    return values

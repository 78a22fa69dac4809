"""Loading a manifest file: TOML parsing, validation, and errors that name file, field and fix."""

from __future__ import annotations

import codecs
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
from sprout.spec.models import Manifest, SecretRef
from sprout.spec.source import MANIFEST_NAME, existing_manifest, manifest_path

__all__ = [
    "DATABASE_PASSWORD",
    "MANIFEST_NAME",
    "SESSIONS_PASSWORD",
    "load_manifest",
    "manifest_path",
    "parse_manifest",
    "resolve_secrets",
    "secret_keys",
]


def load_manifest(path: Path, raw: bytes | None = None) -> Manifest:
    """Read and validate a manifest file (`raw`: its bytes, already read); raise ManifestError listing
    every problem."""
    if raw is None:
        path = existing_manifest(path)
        raw = path.read_bytes()
    else:
        path = manifest_path(path)
    # Editors on Windows often start UTF-8 files with a byte order mark, which TOML does not allow;
    # it says nothing about the content, so it is skipped (as `utf-8-sig` does) rather than refused.
    bom = len(codecs.BOM_UTF8) if raw.startswith(codecs.BOM_UTF8) else 0
    try:
        data = tomllib.loads(raw[bom:].decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ManifestError(str(path), [f"not UTF-8 text ({exc.reason} at byte {bom + exc.start})"]) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError(str(path), [f"TOML syntax error: {exc}"]) from exc
    return parse_manifest(data, source=str(path))


def parse_manifest(data: Mapping[str, Any], source: str = MANIFEST_NAME, stored: bool = False) -> Manifest:
    """Validate already-parsed manifest data; `source` names it in errors; `stored`: read from the state."""
    try:
        return Manifest.model_validate(data, context={"stored": stored})
    except ValidationError as exc:
        raise ManifestError(source, [_describe(error) for error in exc.errors()]) from exc


def _describe(error: ErrorDetails) -> str:
    """One error as `field.path: problem`, with a suggestion for misspelt keys."""
    loc = [str(part) for part in error["loc"]]
    where = (
        "".join(f"[{part}]" if part.isdigit() else f".{part}" for part in loc).lstrip(".") or "(top level)"
    )
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
    plain = _plain(kind, error.get("ctx", {}))
    if plain is not None:
        return f"{where}: {plain} (got {error['input']!r})"
    if kind.endswith("_type") or kind.endswith("_parsing"):
        message = f"{message} (got {error['input']!r})"
    return f"{where}: {message}"


#: What a value must look like, for the patterns the models use (the regex itself helps nobody).
_PATTERN_HINTS = {
    "^/": 'must start with "/"',
    "^[a-z0-9][a-z0-9.-]*$": "must be lowercase letters, digits, dots and dashes",
}


def _plain(kind: str, ctx: dict[str, Any]) -> str | None:
    """Plain words for pydantic's built-in constraint and type errors; None keeps pydantic's text."""
    bounds = {
        "greater_than_equal": ("must be at least", "ge"),
        "greater_than": ("must be greater than", "gt"),
        "less_than_equal": ("must be at most", "le"),
        "less_than": ("must be less than", "lt"),
    }
    if kind in bounds:
        words, key = bounds[kind]
        limit = ctx.get(key)
        return f"{words} {limit:g}" if isinstance(limit, int | float) else f"{words} {limit}"
    if kind == "finite_number":
        return "must be a finite number"
    if kind == "string_too_short" and ctx.get("min_length") == 1:
        return "must not be empty"
    if kind == "too_short":
        count = ctx.get("min_length")
        return f"must list at least {count} item{'s' if count != 1 else ''}"
    if kind == "string_pattern_mismatch":
        pattern = str(ctx.get("pattern", ""))
        return _PATTERN_HINTS.get(pattern, f"must match the pattern {pattern}")
    types = {
        ("int_type", "int_parsing", "int_from_float"): "must be a whole number",
        ("float_type", "float_parsing"): "must be a number",
        ("string_type",): "must be a string",
        ("bool_type", "bool_parsing"): "must be true or false",
        ("list_type", "tuple_type"): "must be a list",
        ("dict_type", "model_type", "model_attributes_type"): "must be a table",
        ("datetime_type", "datetime_parsing", "datetime_from_date_parsing"): (
            "must be a date and time such as 2026-06-14T19:30:00Z"
        ),
    }
    for kinds, words in types.items():
        if kind in kinds:
            return words
    return None


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


#: The key of `[resources.database] password` among resolved secrets (never a valid variable name, so it
#: cannot clash with `[secrets]`); it becomes part of DATABASE_URL, not a variable of its own.
DATABASE_PASSWORD = "resources.database.password"
#: The same for `[resources.sessions] password`, which becomes part of SESSION_STORE_URL.
SESSIONS_PASSWORD = "resources.sessions.password"


def secret_keys(manifest: Manifest) -> list[str]:
    """The keys `resolve_secrets` gives values for: `[secrets]` names, then the resources' passwords' keys."""
    return [key for key, _ in _refs(manifest)]


def _refs(manifest: Manifest) -> list[tuple[str, SecretRef]]:
    """Every secret reference of the manifest, by its key among resolved secrets."""
    refs = list(manifest.secrets.items())
    for key, ref in (
        (DATABASE_PASSWORD, manifest.resources.database.password),
        (SESSIONS_PASSWORD, manifest.resources.sessions.password),
    ):
        if ref is not None:
            refs.append((key, ref))
    return refs


def resolve_secrets(
    manifest: Manifest, base_dir: Path, environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The secrets' values (`[secrets]` and the resources' passwords), read now from the environment or
    files; never persisted by Sprout."""
    environ = os.environ if environ is None else environ
    values: dict[str, str] = {}
    for key, ref in _refs(manifest):
        where = key if key.startswith("resources.") else f"secrets.{key}"
        if ref.env is not None:
            if ref.env not in environ:
                raise UserError(f"{where}: environment variable {ref.env} is not set (export it first)")
            values[key] = environ[ref.env]
        elif ref.file is not None:
            path = (base_dir / ref.file).expanduser()
            try:
                values[key] = path.read_text(encoding="utf-8").rstrip("\n")
            except OSError as exc:
                raise UserError(f"{where}: cannot read {path}: {exc.strerror}") from exc
    return values

"""The manifest (`sprout.toml`) as pydantic models; every key documented, every default explicit."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import AfterValidator, Field, StrictBool, ValidationInfo, field_validator, model_validator

from sprout.spec.aws import AwsSection
from sprout.spec.base import Section, quoted, refuse_nul
from sprout.spec.kubernetes import KubernetesSection
from sprout.spec.paths import RequestPath
from sprout.spec.rules import repeated_hosts
from sprout.spec.scaling import MAX_INSTANCES, ScalingSection
from sprout.spec.tls import TlsSection
from sprout.spec.units import Duration, Size, format_duration

#: Variables Sprout sets itself; `[env]` and `[secrets]` may not override them.
RESERVED_ENV = frozenset(
    {"PORT", "HOST", "DATABASE_URL", "SESSION_STORE_URL", "SESSION_STORE_ZONES", "PATH", "VIRTUAL_ENV"}
)
# Matched whole (`fullmatch`): with `match`, the `$` would also accept a trailing newline.
_APP_NAME = re.compile(r"^[a-z][a-z0-9-]{0,38}[a-z0-9]$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_HOST = re.compile(r"^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")
_ZONE = re.compile(r"^[a-z0-9][a-z0-9-]{0,19}$")


#: Linux's limit on one environment string, `NAME=value` and its NUL (MAX_ARG_STRLEN: 32 pages).
MAX_ENV_ENTRY = 131_072
#: What `[env]` may take in all of the kernel's room for a command's arguments and environment (ARG_MAX,
#: 2 MiB at the usual 8 MiB stack), leaving the rest to Sprout's own variables and `[secrets]`.
MAX_ENV_TOTAL = 1_048_576

#: An `[env]` value: any text an environment variable can carry (all but NUL).
EnvValue = Annotated[str, AfterValidator(refuse_nul)]

Strategy = Literal["rolling", "rolling_with_batch", "immutable", "bluegreen", "canary"]


class AppSection(Section):
    """What the app is and how to run it; commands run like a Procfile's (`sh -c` in the bundle)."""

    name: str = Field(
        description="Lowercase letters, digits and dashes; 2-40 characters; starts with a letter.",
        json_schema_extra={"pattern": _APP_NAME.pattern},
    )
    web: str = Field(min_length=1, description="Command that serves HTTP on $HOST:$PORT.")
    install: str | None = Field(None, description="Run once per bundle at bootstrap (cached per hash).")
    install_inputs: tuple[str, ...] | None = Field(
        None,
        description=(
            "Files (relative to the app folder) that alone decide what `install` installs; when set, "
            "versions whose files and command are unchanged share one virtualenv instead of installing again."
        ),
    )
    install_outputs: tuple[str, ...] | None = Field(
        None,
        description=(
            "Folders (relative to the app folder) that `install` makes, such as vendor or node_modules; "
            "cached with the install inputs' key, so a code-only version gets them back without installing."
        ),
    )
    python: StrictBool = Field(
        True,
        description=(
            "false: the app is not Python; no virtualenv is made and no Python variables "
            "(VIRTUAL_ENV, PYTHON*, PIP_*, a venv on PATH) are set for its commands."
        ),
    )
    release: str | None = Field(None, description="Run once per deploy before traffic moves (migrations).")
    test: str | None = Field(None, description="The app's own tests; a failure stops a release.")

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not _APP_NAME.fullmatch(value):
            raise ValueError(
                f"invalid app name {quoted(value)} (2-40 lowercase letters, digits and dashes, starting with a letter)"
            )
        return value

    @field_validator("install_inputs")
    @classmethod
    def _valid_install_inputs(
        cls, value: tuple[str, ...] | None, info: ValidationInfo
    ) -> tuple[str, ...] | None:
        if value is None:
            return value
        if not (info.data.get("install") or "").strip():
            raise ValueError(
                "set without install; add the [app] install command these files feed, or remove install_inputs"
            )
        if not value:
            raise ValueError(
                'must list at least 1 file (e.g. ["requirements.txt"]); remove the key to install every version afresh'
            )
        _check_bundle_paths(value, "a file")
        return value

    @field_validator("install_outputs")
    @classmethod
    def _valid_install_outputs(
        cls, value: tuple[str, ...] | None, info: ValidationInfo
    ) -> tuple[str, ...] | None:
        if value is None:
            return value
        if info.data.get("install_inputs") is None:
            raise ValueError(
                "set without install_inputs; list the files that decide what install makes "
                '(e.g. install_inputs = ["composer.lock"]), or remove install_outputs'
            )
        if not value:
            raise ValueError('must list at least 1 folder (e.g. ["vendor"]); or remove the key')
        _check_bundle_paths(value, "a folder")
        return value

    @model_validator(mode="after")
    def _outputs_when_not_python(self) -> Self:
        # Without a virtualenv, a shared layer would hold nothing: a code-only version would lose the install.
        if not self.python and self.install_inputs is not None and self.install_outputs is None:
            raise ValueError(
                "install_inputs with python = false caches only install_outputs; list the folders "
                'install makes (e.g. install_outputs = ["vendor"])'
            )
        return self


def _check_bundle_paths(paths: tuple[str, ...], kind: str) -> None:
    """Raise ValueError unless every path names `kind` (a file, a folder) inside the bundle, once."""
    for path in paths:
        problem = _install_input_problem(path)
        if problem:
            raise ValueError(
                f"{path!r} {problem}; name {kind} inside the app folder, relative to sprout.toml"
            )
    repeated = sorted({path for path in paths if paths.count(path) > 1})
    if repeated:
        raise ValueError(f"{repeated[0]!r} is listed more than once")


def _install_input_problem(path: str) -> str | None:
    """Why `path` cannot name a file or folder inside the bundle, or None when it can."""
    if not path.strip():
        return "is an empty path"
    if path.strip("/") in ("", "."):
        return "is the app folder itself"
    if path.startswith("/"):
        return "is an absolute path"
    if ".." in path.split("/"):
        return 'leaves the app folder ("..")'
    return None


#: The shortest `[health]` durations accepted, and what goes wrong below each one.
HEALTH_FLOORS: dict[str, tuple[float, str]] = {
    "timeout": (0.1, "a shorter check fails whenever the instance pauses for a moment"),
    "interval": (0.25, "shorter intervals spend the router's CPU on health checks"),
    "grace": (1.0, "a shorter grace replaces every new instance before it can start"),
}


class HealthSection(Section):
    """How the router and the control plane decide that an instance is healthy."""

    path: RequestPath = Field("/", description="Path (and query) answered with 2xx/3xx when healthy.")
    interval: Duration = 2.0
    timeout: Duration = 1.0
    healthy_threshold: int = Field(2, ge=1, le=10)
    unhealthy_threshold: int = Field(3, ge=1, le=10)
    grace: Duration = Field(60.0, description="How long a new instance may take to become healthy.")

    @field_validator("interval", "timeout", "grace")
    @classmethod
    def _above_floor(cls, value: float, info: ValidationInfo) -> float:
        name = str(info.field_name)
        floor, why = HEALTH_FLOORS[name]
        if value < floor and info.context and info.context.get("stored"):
            # A manifest stored by a Sprout from before this floor keeps its environment running: it is
            # read at the floor (the router would refuse less), while new input below it is refused.
            return floor
        if value < floor:
            raise ValueError(
                f"{format_duration(value)} is below the minimum of {format_duration(floor)} ({why}); "
                f'set {name} = "{format_duration(floor)}" or more'
            )
        return value

    @model_validator(mode="after")
    def _timeout_below_interval(self) -> Self:
        if self.timeout > self.interval:
            raise ValueError(f"timeout ({self.timeout:g}s) must not exceed interval ({self.interval:g}s)")
        return self


class InstancesSection(Section):
    """The fleet: instance size, bounds, and the zones it is spread across evenly."""

    size: str = Field("small", pattern=r"^[a-z0-9][a-z0-9.-]*$")
    min: int = Field(2, ge=0, le=MAX_INSTANCES)
    max: int = Field(10, ge=1, le=MAX_INSTANCES)
    desired: int | None = Field(None, ge=0, description="Initial capacity (default: min).")
    zones: list[str] = Field(default_factory=lambda: ["a", "b"], min_length=1)

    @field_validator("zones")
    @classmethod
    def _unique_zones(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError(f"zones must be unique, got {value}")
        for zone in value:
            if not _ZONE.fullmatch(zone):
                raise ValueError(f"invalid zone name {quoted(zone)} (lowercase letters, digits, dashes)")
        return value

    @model_validator(mode="after")
    def _bounds(self) -> Self:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        if self.desired is not None and not self.min <= self.desired <= self.max:
            raise ValueError(
                f"desired ({self.desired}) must be between min ({self.min}) and max ({self.max})"
            )
        return self

    @property
    def initial(self) -> int:
        """Capacity a fresh environment starts with."""
        return self.min if self.desired is None else self.desired


class CanaryAnalysis(Section):
    """Thresholds that promote a canary or roll it back automatically."""

    steps: list[int] = Field(default_factory=lambda: [5, 25, 50, 100])
    interval: Duration = Field(30.0, description="Analysis interval at each weight step.")
    max_error_rate: float = Field(0.01, ge=0, le=1, description="Canary 5xx rate allowed above stable's.")
    max_latency_ratio: float = Field(1.5, gt=0, description="Canary p95 / stable p95 allowed.")
    min_requests: int = Field(20, ge=0, description="Requests a step needs before it can be judged.")

    @field_validator("steps")
    @classmethod
    def _increasing(cls, value: list[int]) -> list[int]:
        if not value or any(not 0 < s <= 100 for s in value) or value != sorted(set(value)):
            raise ValueError(f"steps must be increasing percentages in 1..100, got {value}")
        if value[-1] != 100:
            raise ValueError(f"the last step must be 100, got {value[-1]}")
        return value


class DeploySection(Section):
    """How a new version replaces the running one."""

    strategy: Strategy = "rolling"
    batch_size: int = Field(1, ge=1, description="Instances replaced at once by rolling strategies.")
    rollback_window: Duration = Field(600.0, description="How long the old fleet stays warm.")
    drain: Duration = Field(30.0, description="How long removed instances may finish in-flight requests.")
    health_timeout: Duration = Field(120.0, description="How long new instances may take to be healthy.")
    smoke_path: RequestPath | None = Field(None, description="Extra path that must answer 2xx.")
    test_database: Literal["sqlite", "scratch"] = Field(
        "sqlite",
        description=(
            "The database the test gate gives `[app] test`: a throw-away SQLite file, or `scratch`: "
            "an empty database created on the `[resources.database]` server and dropped after."
        ),
    )
    canary: CanaryAnalysis = Field(default_factory=CanaryAnalysis)


class SecretRef(Section):
    """Where a secret's value comes from; the value itself is never stored."""

    env: str | None = Field(None, description="Read from this environment variable at deploy time.")
    file: str | None = Field(None, description="Read from this file (relative to the manifest).")

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if (self.env is None) == (self.file is None):
            raise ValueError('give exactly one of "env" or "file"')
        return self


class _UrlWithSecretPassword(Section):
    """A resource reached by `url`, whose password is a secret reference and never a literal in the url."""

    #: The field path and a suggested variable, named in the refusal of a literal password.
    _where: ClassVar[str]
    _variable: ClassVar[str]

    @field_validator("password", mode="before", check_fields=False)
    @classmethod
    def _password_shorthand(cls, value: object) -> object:
        return secret_ref_shorthand(value, "password")

    @field_validator("url", check_fields=False)
    @classmethod
    def _no_literal_password(cls, value: str | None) -> str | None:
        return refuse_literal_password(value, cls._where, cls._variable)


class SessionsResource(_UrlWithSecretPassword):
    """Where the app keeps sessions: `SESSION_STORE_URL`."""

    _where = "resources.sessions"
    _variable = "SESSIONS_PASSWORD"

    engine: Literal["sqlite", "memcached", "redis"] = "sqlite"
    url: str | None = Field(
        None, description="An external store, without a password; default: Sprout manages one."
    )
    password: SecretRef | None = Field(
        None,
        description=(
            'The password for `url` (e.g. Redis AUTH), as a secret reference: "env:VAR", "file:PATH" or '
            "a table; Sprout adds it to SESSION_STORE_URL when an instance starts and never stores it."
        ),
    )
    memory: Size = Field(64 * 1024 * 1024, description="Memory per managed memcached node.")

    @model_validator(mode="after")
    def _password_needs_url(self) -> Self:
        if self.password is not None and self.url is None:
            raise ValueError("password is set without a url; add the url it is the password of")
        if self.password is not None and self.engine != "redis":
            raise ValueError(f'password is set for engine "{self.engine}", which takes none; remove it')
        return self


class DatabaseResource(_UrlWithSecretPassword):
    """The app's database: `DATABASE_URL`."""

    _where = "resources.database"
    _variable = "DB_PASSWORD"

    engine: Literal["sqlite", "mysql", "postgres"] = "sqlite"
    url: str | None = Field(
        None, description="External database URL (like an RDS endpoint), without a password."
    )
    pool_size: int = Field(
        15,
        ge=1,
        description=(
            "Connections one instance may hold open (its pool; default: SQLAlchemy's 5 + 10 overflow); "
            "`plan` and `validate` warn when max instances x this can exceed the server's max_connections."
        ),
    )
    password: SecretRef | None = Field(
        None,
        description=(
            'The password for `url`, as a secret reference: "env:VAR", "file:PATH" or a table; '
            "Sprout adds it to DATABASE_URL when an instance starts and never stores it."
        ),
    )

    @model_validator(mode="after")
    def _url_matches_engine(self) -> Self:
        if self.url is None:
            if self.password is not None:
                raise ValueError("password is set without a url; add the url it is the password of")
            return self
        schemes = {
            "sqlite": ("sqlite",),
            "mysql": ("mysql", "mysql+pymysql", "mariadb", "mariadb+pymysql"),
            "postgres": ("postgres", "postgresql", "postgresql+psycopg", "postgresql+psycopg2"),
        }[self.engine]
        scheme = self.url.split("://", 1)[0] if "://" in self.url else ""
        if scheme not in schemes:
            raise ValueError(
                f'url "{self.url}" does not match engine "{self.engine}" (expected {schemes[0]}://…)'
            )
        if self.password is not None and self.engine == "sqlite":
            raise ValueError("password is set for a sqlite database, which has none; remove it")
        if self.password is not None and "@" not in self.url.partition("://")[2].split("/", 1)[0]:
            raise ValueError(
                f'url "{self.url}" names no user for its password; write it as {scheme}://user@host/name'
            )
        return self


def refuse_literal_password(url: str | None, table: str, variable: str) -> str | None:
    """`url` unchanged, unless it carries a password: then the error that says how to give it instead."""
    if url is not None and _url_password(url):
        raise ValueError(
            "holds a literal password; remove it from the url and give it as a secret: "
            f'password = "env:{variable}" (or "file:PATH") in [{table}]'
        )
    return url


def _url_password(url: str) -> bool:
    """Whether `url` carries a password in its userinfo (`scheme://user:password@host`)."""
    _, sep, rest = url.partition("://")
    if not sep:
        return False
    authority = rest.split("/", 1)[0]
    userinfo, at, _ = authority.rpartition("@")
    return bool(at) and ":" in userinfo


def secret_ref_shorthand(value: object, name: str) -> object:
    """`"env:VAR"` / `"file:PATH"` as the table form of a `SecretRef`; other values unchanged."""
    if not isinstance(value, str):
        return value
    kind, _, target = value.partition(":")
    if kind not in ("env", "file") or not target:
        raise ValueError(f'secret "{name}": use "env:NAME", "file:PATH" or a table')
    return {kind: target}


class Resources(Section):
    """Backing services of an environment."""

    sessions: SessionsResource = Field(default_factory=SessionsResource)
    database: DatabaseResource = Field(default_factory=DatabaseResource)


class RouterSection(Section):
    """How traffic reaches the app: host names and the edge cache."""

    hosts: list[str] = Field(default_factory=list, description='Default: ["<app>.localhost"].')
    cache_static: StrictBool = Field(False, description="Cache `Cache-Control: public` GET responses.")
    max_body: Size = Field(10 * 1024 * 1024, description="Largest request body accepted.")
    default_route: StrictBool = Field(
        False, description="`sprout up` of this environment makes the router's default route serve it."
    )

    @field_validator("hosts")
    @classmethod
    def _valid_hosts(cls, value: list[str]) -> list[str]:
        for host in value:
            if not _HOST.fullmatch(host):
                raise ValueError(
                    f'invalid host name {quoted(host)} (e.g. "shop.example.com" or "*.example.com")'
                )
        for host in repeated_hosts(value):
            raise ValueError(f'"{host}" is listed more than once; list each host name once')
        return value


class CostSection(Section):
    """Prices used by `sprout cost` (per instance-hour, by size)."""

    currency: str = Field("USD", min_length=1)
    prices: dict[str, Annotated[float, Field(ge=0, strict=True)]] = Field(
        default_factory=dict, description="Price per instance-hour by size; overrides the default table."
    )


class LogsSection(Section):
    """Central log retention."""

    retention_days: int = Field(14, ge=1, le=3653)


def _secrets_schema(schema: dict[str, Any]) -> None:
    """Let editors accept the `NAME = "env:VAR"` / `"file:PATH"` shorthand next to the table form."""
    schema["additionalProperties"] = {
        "anyOf": [{"type": "string", "pattern": "^(env|file):.+$"}, schema["additionalProperties"]]
    }


class Manifest(Section):
    """A whole `sprout.toml`."""

    app: AppSection
    health: HealthSection = Field(default_factory=HealthSection)
    instances: InstancesSection = Field(default_factory=InstancesSection)
    deploy: DeploySection = Field(default_factory=DeploySection)
    scaling: ScalingSection = Field(default_factory=ScalingSection)
    resources: Resources = Field(default_factory=Resources)
    router: RouterSection = Field(default_factory=RouterSection)
    tls: TlsSection | None = Field(None, description="HTTPS for the router hosts; off without this table.")
    env: dict[str, EnvValue] = Field(default_factory=dict)
    secrets: dict[str, SecretRef] = Field(default_factory=dict, json_schema_extra=_secrets_schema)
    cost: CostSection = Field(default_factory=CostSection)
    logs: LogsSection = Field(default_factory=LogsSection)
    aws: AwsSection = Field(default_factory=AwsSection)
    kubernetes: KubernetesSection = Field(default_factory=KubernetesSection)

    @field_validator("env", "secrets", mode="before")
    @classmethod
    def _env_names(cls, value: object) -> object:
        if isinstance(value, dict):
            for name in value:
                if not _ENV_NAME.fullmatch(name):
                    raise ValueError(f"{quoted(name)} is not a valid environment variable name")
                if name in RESERVED_ENV or name.startswith("SPROUT_"):
                    raise ValueError(f'"{name}" is set by Sprout and cannot be overridden')
        return value

    @field_validator("env")
    @classmethod
    def _env_fits_exec(cls, value: dict[str, str]) -> dict[str, str]:
        # Checked here: an instance's exec would otherwise fail with E2BIG on every start.
        total = 0
        for name, text in value.items():
            size = len(name.encode()) + len(text.encode()) + 2
            if size > MAX_ENV_ENTRY:
                raise ValueError(
                    f'"{name}" is {size:,} bytes as an environment variable; Linux takes at most '
                    f"{MAX_ENV_ENTRY:,} (keep large data in a file of the bundle or the database)"
                )
            total += size
        if total > MAX_ENV_TOTAL:
            raise ValueError(
                f"the variables add up to {total:,} bytes; at most {MAX_ENV_TOTAL:,} fit beside Sprout's own "
                "in a command's environment (keep large data in a file of the bundle or the database)"
            )
        return value

    @field_validator("secrets", mode="before")
    @classmethod
    def _secret_shorthand(cls, value: object) -> object:
        if not isinstance(value, dict):
            return value
        return {name: secret_ref_shorthand(ref, name) for name, ref in value.items()}

    @model_validator(mode="after")
    def _cross_checks(self) -> Self:
        clash = set(self.env) & set(self.secrets)
        if clash:
            names = ", ".join(f'"{name}"' for name in sorted(clash))
            raise ValueError(f"{names} defined in both [env] and [secrets] (keep one)")
        if self.deploy.test_database == "scratch" and self.resources.database.engine == "sqlite":
            raise ValueError(
                'deploy.test_database = "scratch" needs [resources.database] on a MySQL or PostgreSQL '
                'server (engine "mysql" or "postgres"); use "sqlite" otherwise'
            )
        return self

    @property
    def hosts(self) -> list[str]:
        """The router host names of this app (default `<name>.localhost`)."""
        return self.router.hosts or [f"{self.app.name}.localhost"]

    def secret_files(self) -> list[str]:
        """The files `file:` secrets name (relative to the manifest), which never enter a bundle."""
        refs = [*self.secrets.values(), self.resources.database.password, self.resources.sessions.password]
        return sorted({ref.file for ref in refs if ref is not None and ref.file is not None})

    def digest(self) -> str:
        """A stable sha256 of the manifest's meaning (same settings, same hash)."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

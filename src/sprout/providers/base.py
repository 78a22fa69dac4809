"""The provider interface: launch, observe and stop instances; local, aws and kubernetes implement it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

ProcessState = Literal["running", "exited"]


@dataclass(frozen=True)
class InstanceSpec:
    """Everything an instance needs to bootstrap itself, like cloud user data; never holds secrets."""

    instance_id: str
    app: str
    env: str
    version: str
    bundle_sha256: str
    store_url: str
    zone: str
    host: str
    port: int
    web: str
    install: str | None
    health_path: str
    log_file: str
    cache_dir: str
    grace: float = 10.0
    env_vars: Mapping[str, str] = field(default_factory=dict)
    secret_names: tuple[str, ...] = ()
    #: The files keying a shared dependency layer (`[app] install_inputs`); None: a venv per bundle.
    install_inputs: tuple[str, ...] | None = None
    #: The unprivileged user the app runs as (created on demand by a root agent); None: the agent's user.
    run_as: str | None = None
    #: The instance's own folder: the app's HOME and TMPDIR are made in it; None: the agent's own.
    instance_dir: str | None = None

    def to_json(self) -> dict[str, object]:
        """A JSON-ready mapping (the instance's spec file)."""
        data = dict(self.__dict__)
        data["env_vars"] = dict(self.env_vars)
        data["secret_names"] = list(self.secret_names)
        data["install_inputs"] = None if self.install_inputs is None else list(self.install_inputs)
        if self.run_as is None:
            # Absent rather than null: specs of instances that run as the agent's user stay as they were.
            del data["run_as"]
        if self.instance_dir is None:
            del data["instance_dir"]
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> InstanceSpec:
        """The spec back from its JSON mapping."""
        values = dict(data)
        values["env_vars"] = dict(values.get("env_vars") or {})  # type: ignore[call-overload]
        values["secret_names"] = tuple(values.get("secret_names") or ())  # type: ignore[arg-type]
        inputs = values.get("install_inputs")
        values["install_inputs"] = None if inputs is None else tuple(inputs)  # type: ignore[arg-type]
        return cls(**values)  # type: ignore[arg-type]


@dataclass(frozen=True)
class ObservedInstance:
    """An instance as the provider sees it now: identity proven by pid and process start time."""

    instance_id: str
    pid: int
    started_at: float
    state: ProcessState
    host: str
    port: int
    zone: str
    version: str


class Provider(Protocol):
    """What the control plane needs from a place that runs instances."""

    name: str

    def launch(self, spec: InstanceSpec, secrets: Mapping[str, str]) -> ObservedInstance:
        """Start one instance; `secrets` reach its process environment only."""
        ...

    def observe(self) -> list[ObservedInstance]:
        """Every instance this provider started that still exists (adopts after a restart)."""
        ...

    def stop(self, instance_id: str, grace: float) -> None:
        """Stop an instance: SIGTERM, up to `grace` seconds, then SIGKILL; idempotent."""
        ...

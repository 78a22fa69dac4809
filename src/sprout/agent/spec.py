"""The agent's reading of its spec file: an `InstanceSpec`'s fields, without importing dataclasses.

The agent runs once per instance start, and a cached start should cost little more than the app's own;
`sprout.providers.base` pulls in dataclasses and typing (a third of the agent's import time), so the
agent reads the same JSON into this plain class. A test keeps its fields identical to `InstanceSpec`.
"""

from __future__ import annotations

from collections.abc import Mapping

from sprout.errors import UserError


class AgentSpec:
    """One instance's user data, as written by the provider (`InstanceSpec.to_json`)."""

    __slots__ = (
        "app",
        "bundle_sha256",
        "cache_dir",
        "env",
        "env_vars",
        "grace",
        "health_path",
        "host",
        "install",
        "install_inputs",
        "instance_dir",
        "instance_id",
        "log_file",
        "port",
        "run_as",
        "secret_names",
        "store_url",
        "version",
        "web",
        "zone",
    )

    def __init__(self, data: Mapping[str, object], source: str) -> None:
        def text(name: str) -> str:
            value = data.get(name)
            if not isinstance(value, str):
                raise UserError(f"{source}: {name} must be a string, not {value!r}; the provider writes it")
            return value

        self.instance_id = text("instance_id")
        self.app = text("app")
        self.env = text("env")
        self.version = text("version")
        self.bundle_sha256 = text("bundle_sha256")
        self.store_url = text("store_url")
        self.zone = text("zone")
        self.host = text("host")
        self.web = text("web")
        self.health_path = text("health_path")
        self.log_file = text("log_file")
        self.cache_dir = text("cache_dir")
        install = data.get("install")
        self.install = install if isinstance(install, str) and install.strip() else None
        inputs = data.get("install_inputs")
        if inputs is not None and (
            not isinstance(inputs, list) or not all(isinstance(i, str) for i in inputs)
        ):
            raise UserError(f"{source}: install_inputs must be a list of file paths or null")
        self.install_inputs: tuple[str, ...] | None = None if inputs is None else tuple(inputs)
        port, grace = data.get("port"), data.get("grace", 10.0)
        if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
            raise UserError(f"{source}: port must be a TCP port number, not {port!r}")
        if not isinstance(grace, int | float) or isinstance(grace, bool) or grace < 0:
            raise UserError(f"{source}: grace must be a number of seconds, not {grace!r}")
        self.port: int = port
        self.grace = float(grace)
        env_vars = data.get("env_vars") or {}
        if not isinstance(env_vars, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in env_vars.items()
        ):
            raise UserError(f"{source}: env_vars must map names to strings")
        self.env_vars: dict[str, str] = env_vars
        names = data.get("secret_names") or []
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise UserError(f"{source}: secret_names must be a list of names")
        self.secret_names: tuple[str, ...] = tuple(names)
        run_as = data.get("run_as")
        if run_as is not None and (not isinstance(run_as, str) or not run_as):
            raise UserError(f"{source}: run_as must be a user name or null, not {run_as!r}")
        self.run_as: str | None = run_as
        instance_dir = data.get("instance_dir")
        if instance_dir is not None and (not isinstance(instance_dir, str) or not instance_dir):
            raise UserError(f"{source}: instance_dir must be a folder path or null, not {instance_dir!r}")
        self.instance_dir: str | None = instance_dir

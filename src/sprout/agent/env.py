"""The app contract environment: what an app process sees, and nothing it should not."""

from __future__ import annotations

import os
from collections.abc import Mapping

from sprout.agent.spec import AgentSpec

#: Variables passed through from the agent's own environment: locale, identity, temp and cache
#: locations, proxies and certificates (so `install` can reach a package index), pip's settings.
PASSTHROUGH = (
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LANGUAGE",
    "TZ",
    "TMPDIR",
    "XDG_CACHE_HOME",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
)
PASSTHROUGH_PREFIXES = ("LC_", "PIP_")
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"


def base_env(environ: Mapping[str, str], venv: str | None) -> dict[str, str]:
    """The environment for any command of the bundle: passthrough variables and, for a Python app (one
    with a `venv`), the venv's bin first on PATH and Python's variables; none of them for another app."""
    env = {
        name: value
        for name, value in environ.items()
        if name in PASSTHROUGH or (name.startswith(PASSTHROUGH_PREFIXES) and (venv or name[:4] != "PIP_"))
    }
    if venv is None:
        # An activated virtualenv that Sprout itself was started from is no business of this app either.
        own = os.path.join(environ["VIRTUAL_ENV"], "bin") if environ.get("VIRTUAL_ENV") else None
        path = (environ.get("PATH") or DEFAULT_PATH).split(os.pathsep)
        env["PATH"] = os.pathsep.join(part for part in path if part != own)
        return env
    env["PATH"] = f"{os.path.join(venv, 'bin')}{os.pathsep}{environ.get('PATH') or DEFAULT_PATH}"
    env["VIRTUAL_ENV"] = venv
    # Logs are read line by line while the app runs; a block-buffered stdout would hold them back.
    env["PYTHONUNBUFFERED"] = "1"
    # A bundle's venv has the pip that came with Python; asking the index for a newer one only costs time.
    env.setdefault("PIP_DISABLE_PIP_VERSION_CHECK", "1")
    return env


def app_env(spec: AgentSpec, environ: Mapping[str, str], venv: str | None) -> dict[str, str]:
    """The `web` command's environment: base, the spec's variables, the contract, then the secrets."""
    env = base_env(environ, venv)
    env.update(spec.env_vars)
    env.update(
        {
            "HOST": spec.host,
            "PORT": str(spec.port),
            "SPROUT_APP": spec.app,
            "SPROUT_ENV": spec.env,
            "SPROUT_VERSION": spec.version,
            "SPROUT_INSTANCE": spec.instance_id,
            "SPROUT_ZONE": spec.zone,
        }
    )
    # Secret values never touch the spec file: they exist only in the agent's inherited environment.
    env.update({name: environ[name] for name in spec.secret_names if name in environ})
    return env


def missing_secrets(spec: AgentSpec, environ: Mapping[str, str]) -> list[str]:
    """The secret names the spec expects that the agent's environment does not carry."""
    return [name for name in spec.secret_names if name not in environ]

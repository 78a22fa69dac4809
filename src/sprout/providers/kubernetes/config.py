"""The agent's configuration as a ConfigMap per colour: the instance spec without identity, and no secrets."""

from __future__ import annotations

import hashlib
import json

from kubernetes.client import V1ConfigMap, V1ObjectMeta

from sprout.providers.base import InstanceSpec
from sprout.providers.kubernetes.context import APP_PORT, CACHE_DIR, Colour, RenderContext
from sprout.services.database import standard_url
from sprout.services.sessions import standard_memcached_env
from sprout.spec.models import Manifest

#: The key of the spec template inside the ConfigMap (and its file name when mounted).
SPEC_KEY = "spec.json"
#: Filled per pod by the init container (`podspec`) from the downward API.
PENDING = ""


def instance_spec(ctx: RenderContext) -> InstanceSpec:
    """The spec every pod of this rendering starts from; `instance_id` and `zone` are filled per pod."""
    manifest = ctx.manifest
    env_vars = dict(manifest.env)
    for name, url in resource_urls(manifest).items():
        env_vars[name] = url
    return InstanceSpec(
        instance_id=PENDING,
        app=ctx.app,
        env=ctx.env,
        version=ctx.version,
        bundle_sha256=ctx.bundle_sha256,
        store_url=ctx.store_url,
        zone=PENDING,
        host="0.0.0.0",
        port=APP_PORT,
        web=manifest.app.web,
        install=manifest.app.install,
        install_inputs=manifest.app.install_inputs,
        health_path=manifest.health.path,
        # Records on stdout are what `kubectl logs` and every cluster log shipper collect.
        log_file="/dev/stdout",
        cache_dir=CACHE_DIR,
        grace=manifest.deploy.drain,
        env_vars=env_vars,
        # Names only: the values come from the Secret through envFrom.
        secret_names=tuple(secret_names(manifest)),
    )


def resource_urls(manifest: Manifest) -> dict[str, str]:
    """DATABASE_URL and SESSION_STORE_URL (and _ZONES) from the resources' URLs in their standard shapes,
    but not those with a password."""
    urls = {name: url for name, url, secret in _resource_urls(manifest) if url and not secret}
    if "DATABASE_URL" in urls:
        urls["DATABASE_URL"] = standard_url(urls["DATABASE_URL"])
    if "SESSION_STORE_URL" in urls:
        urls |= standard_memcached_env(urls["SESSION_STORE_URL"])
    return urls


def secret_names(manifest: Manifest) -> list[str]:
    """The names the pods read from the Secret: `[secrets]`, and each resource URL that has a password
    (a URL with a password is a secret: the pods read it whole from the Secret, never the ConfigMap)."""
    return sorted(
        [*manifest.secrets, *(name for name, url, secret in _resource_urls(manifest) if url and secret)]
    )


def _resource_urls(manifest: Manifest) -> list[tuple[str, str | None, bool]]:
    """(variable, url, whether it has a password) of the database and the session store."""
    database, sessions = manifest.resources.database, manifest.resources.sessions
    return [
        ("DATABASE_URL", database.url, database.password is not None),
        ("SESSION_STORE_URL", sessions.url, sessions.password is not None),
    ]


def spec_json(ctx: RenderContext) -> str:
    """The spec template as stable JSON text."""
    return json.dumps(instance_spec(ctx).to_json(), indent=2, sort_keys=True)


def spec_digest(ctx: RenderContext) -> str:
    """A hash of the spec; the pod template carries it so a changed spec rolls the pods."""
    return hashlib.sha256(spec_json(ctx).encode()).hexdigest()


def config_map(ctx: RenderContext, colour: Colour) -> V1ConfigMap:
    """The ConfigMap one colour's pods mount; each colour has its own, as each may run its own version."""
    return V1ConfigMap(
        api_version="v1",
        kind="ConfigMap",
        metadata=V1ObjectMeta(
            name=ctx.deployment_name(colour),
            namespace=ctx.namespace,
            labels=ctx.labels(**{"sprout.dev/color": colour, "sprout.dev/version": ctx.version}),
        ),
        data={SPEC_KEY: spec_json(ctx)},
    )

"""`sprout k8s …`: the same manifest on Kubernetes — render, validate, apply, diff, deploy, rollback.

A sub-app beside the one-machine commands. `render` and `validate` work offline; `apply`, `diff`,
`deploy` (blue/green by selector switch, through the one release engine) and `rollback` need a cluster from a kubeconfig. The version
comes from the state store (`sprout push`), or is given explicitly with `--bundle-sha256`,
`--store-url` and `--version`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer

from sprout.errors import NotFoundError, UserError
from sprout.spec import Manifest, load_manifest, manifest_path

if TYPE_CHECKING:
    from sprout.providers.kubernetes.cluster import Change, Cluster
    from sprout.providers.kubernetes.context import Colour, Names, RenderContext
    from sprout.providers.kubernetes.fleet import GateOf
    from sprout.providers.kubernetes.releases import KubernetesReleases
    from sprout.state.models import Deployment

T = TypeVar("T")

k8s = typer.Typer(
    name="k8s",
    help="Run the app on Kubernetes: render, validate, apply and diff its objects; blue/green releases.",
    no_args_is_help=True,
)

APP_DIR = typer.Argument(Path("."), help="The app folder (holds sprout.toml).")
ENV = typer.Option("production", "--env", "-e", help="The environment name.")
VERSION = typer.Option(None, "--version", help="A pushed version label such as v3 (default: the latest).")
IMAGE = typer.Option(
    None,
    "--image",
    help="The container image (default: [kubernetes] image, else sprout:<version>-python3.11-slim).",
)
NAMESPACE = typer.Option(
    None, "--namespace", "-n", help="The namespace (default: [kubernetes] namespace, else <app>-<env>)."
)
BUNDLE = typer.Option(None, "--bundle-sha256", help="Use this bundle instead of a pushed version's.")
STORE = typer.Option(None, "--store-url", help="The artifact store the pods fetch from (s3://bucket/prefix).")
SECRET = typer.Option(
    None,
    "--secret-name",
    help="The pre-existing Secret for [secrets] (default: [kubernetes] secret_name, else <app>-secrets).",
)
NO_NAMESPACE = typer.Option(
    False, "--no-namespace", help="Leave the Namespace object out (it already exists)."
)
KUBECONFIG = typer.Option(None, "--kubeconfig", help="The kubeconfig (default: $KUBECONFIG, ~/.kube/config).")
CONTEXT = typer.Option(None, "--context", help="The kubeconfig context (default: its current one).")


@dataclass(frozen=True)
class Release:
    """The version to render: its label, bundle hash and the artifact store holding the bundle."""

    label: str
    sha256: str
    store_url: str


def _release(manifest: Manifest, version: str | None, bundle: str | None, store_url: str | None) -> Release:
    """The release from explicit options, or from the state store's pushed versions."""
    app = manifest.app.name
    if bundle is not None:
        if store_url is None or version is None:
            raise UserError("k8s: --bundle-sha256 needs --store-url and --version too (e.g. --version v3)")
        return Release(version, bundle, store_url)
    from sprout.paths import Home
    from sprout.state import StateStore

    state = StateStore(Home.from_env().ensure().state_db)
    try:
        found = state.get_version(app, version) if version else state.latest_version(app)
    finally:
        state.close()
    if found is None:
        what = f"version {version} of {app}" if version else f"pushed version of {app}"
        raise NotFoundError(
            f"k8s: no {what}; run `sprout push --store s3://bucket/{app}` first, "
            "or give --bundle-sha256, --store-url and --version"
        )
    location = store_url or found.store_url
    if location is None:
        raise UserError(f"k8s: {app} {found.label} has no artifact store recorded; give --store-url")
    return Release(found.label, found.sha256, location)


@dataclass(frozen=True)
class Options:
    """Everything the rendering commands share."""

    app_dir: Path
    env: str
    version: str | None
    image: str | None
    namespace: str | None
    bundle: str | None
    store_url: str | None
    secret_name: str | None
    no_namespace: bool


def _context(options: Options, live: Colour = "blue") -> RenderContext:
    """The checked inputs of one rendering: manifest, release, image, namespace, live colour."""
    from sprout.providers.kubernetes.context import DEFAULT_IMAGE, RenderContext

    manifest = load_manifest(manifest_path(options.app_dir))
    release = _release(manifest, options.version, options.bundle, options.store_url)
    return RenderContext(
        manifest,
        options.env,
        release.label,
        release.sha256,
        release.store_url,
        options.image or manifest.kubernetes.image or DEFAULT_IMAGE,
        _namespace(options.namespace, manifest, options.env),
        live,
        options.secret_name or manifest.kubernetes.secret_name,
    )


def _namespace(given: str | None, manifest: Manifest, env: str) -> str:
    """The namespace: the option, else the manifest's `[kubernetes] namespace`, else `<app>-<env>`."""
    from sprout.providers.kubernetes.render import default_namespace

    return given or manifest.kubernetes.namespace_for(env) or default_namespace(manifest.app.name, env)


def _render(
    options: Options, live: Colour = "blue", staged: Colour | None = None, count: int | None = None
) -> tuple[list[dict[str, Any]], list[str]]:
    """The objects and the notes of one rendering (only `staged`'s ConfigMap and Deployment when given)."""
    from sprout.providers.kubernetes.notes import notes
    from sprout.providers.kubernetes.render import build, serialize, stage

    ctx = _context(options, live)
    if staged is not None:
        pods = ctx.manifest.instances.initial if count is None else count
        return serialize(stage(ctx, staged, pods)), notes(ctx)
    return serialize(build(ctx, create_namespace=not options.no_namespace)), notes(ctx)


def _colour(option: str, value: str) -> Colour:
    """A colour option's value, checked."""
    if value == "blue":
        return "blue"
    if value == "green":
        return "green"
    raise UserError(f"k8s render: {option} must be blue or green, not {value!r}")


def _print_notes(found: list[str]) -> None:
    for note in found:
        typer.echo(f"note: {note}", err=True)


@k8s.command("render")
def render(
    app_dir: Path = APP_DIR,
    env: str = ENV,
    version: str | None = VERSION,
    image: str | None = IMAGE,
    namespace: str | None = NAMESPACE,
    bundle: str | None = BUNDLE,
    store_url: str | None = STORE,
    secret_name: str | None = SECRET,
    no_namespace: bool = NO_NAMESPACE,
    live: str = typer.Option("blue", "--live", help="The colour the live Service selects: blue or green."),
    staged: str | None = typer.Option(
        None,
        "--stage",
        help="Only this colour's ConfigMap and Deployment (a blue/green release's first step).",
    ),
    replicas: int | None = typer.Option(
        None, "--replicas", min=0, help="Pods of the --stage colour (default: [instances] min or desired)."
    ),
    output: str = typer.Option("yaml", "--output", "-o", help="yaml (multi-document) or json (a v1 List)."),
) -> None:
    """Print the Kubernetes objects of the app (nothing is sent to a cluster); notes go to stderr."""
    from sprout.providers.kubernetes.render import to_yaml

    if output not in ("yaml", "json"):
        raise UserError(f"k8s render: --output must be yaml or json, not {output!r}")
    if replicas is not None and staged is None:
        raise UserError("k8s render: --replicas only applies with --stage blue|green")
    options = Options(app_dir, env, version, image, namespace, bundle, store_url, secret_name, no_namespace)
    staged_colour = None if staged is None else _colour("--stage", staged)
    objects, found = _render(options, _colour("--live", live), staged_colour, replicas)
    if output == "json":
        typer.echo(json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}, indent=2))
    else:
        typer.echo(to_yaml(objects), nl=False)
    _print_notes(found)


@k8s.command("validate")
def validate(
    app_dir: Path = APP_DIR,
    env: str = ENV,
    version: str | None = VERSION,
    image: str | None = IMAGE,
    namespace: str | None = NAMESPACE,
    bundle: str | None = BUNDLE,
    store_url: str | None = STORE,
    secret_name: str | None = SECRET,
    kubernetes_version: str = typer.Option(
        "1.33", "--kubernetes-version", help="Validate against this Kubernetes version's schemas."
    ),
) -> None:
    """Check every rendered object against the published Kubernetes JSON schemas (strict, offline)."""
    from sprout.providers.kubernetes.validate import check_version, validate_objects

    wanted = check_version(kubernetes_version)
    options = Options(app_dir, env, version, image, namespace, bundle, store_url, secret_name, False)
    objects, found = _render(options)
    problems = validate_objects(objects, wanted, strict=True)
    _print_notes(found)
    if problems:
        raise UserError(
            f"k8s validate: {len(problems)} of {len(objects)} objects do not validate for Kubernetes {wanted}:\n"
            + "\n".join(f"  {problem}" for problem in problems)
        )
    typer.echo(f"{len(objects)} objects valid for Kubernetes {wanted} (strict schemas, 0 errors)")


def _connected(kubeconfig: Path | None, context: str | None, act: Callable[[Cluster], T]) -> T:
    """Run `act` on the cluster the kubeconfig names; the connection is closed afterwards."""
    from sprout.providers.kubernetes.cluster import Cluster, connect

    api = connect(kubeconfig, context, os.environ)
    try:
        return act(Cluster(api))
    finally:
        api.close()  # type: ignore[no-untyped-call]


def _cluster_run(options: Options, kubeconfig: Path | None, context: str | None, dry_run: bool) -> None:
    """Connect, keep the live colour the cluster has, render and (dry-run) apply; print each change."""
    manifest = load_manifest(manifest_path(options.app_dir))
    namespace = _namespace(options.namespace, manifest, options.env)

    def run(cluster: Cluster) -> list[Change]:
        # Applying must never flip traffic: render with the colour the live Service selects now.
        live = cluster.live_colour(namespace, manifest.app.name) or "blue"
        objects, found = _render(options, live)
        _print_notes(found)
        return cluster.apply(objects, dry_run=dry_run)

    changes = _connected(kubeconfig, context, run)
    for change in changes:
        typer.echo(str(change))
    if all(change.action == "unchanged" for change in changes):
        typer.echo("nothing to do: the cluster already matches the manifest")


@k8s.command("apply")
def apply(
    app_dir: Path = APP_DIR,
    env: str = ENV,
    version: str | None = VERSION,
    image: str | None = IMAGE,
    namespace: str | None = NAMESPACE,
    bundle: str | None = BUNDLE,
    store_url: str | None = STORE,
    secret_name: str | None = SECRET,
    no_namespace: bool = NO_NAMESPACE,
    kubeconfig: Path | None = KUBECONFIG,
    context: str | None = CONTEXT,
) -> None:
    """Server-side apply the objects to the cluster (field manager `sprout`), keeping its live colour."""
    options = Options(app_dir, env, version, image, namespace, bundle, store_url, secret_name, no_namespace)
    _cluster_run(options, kubeconfig, context, dry_run=False)


@k8s.command("diff")
def diff(
    app_dir: Path = APP_DIR,
    env: str = ENV,
    version: str | None = VERSION,
    image: str | None = IMAGE,
    namespace: str | None = NAMESPACE,
    bundle: str | None = BUNDLE,
    store_url: str | None = STORE,
    secret_name: str | None = SECRET,
    no_namespace: bool = NO_NAMESPACE,
    kubeconfig: Path | None = KUBECONFIG,
    context: str | None = CONTEXT,
) -> None:
    """Show what `apply` would change (a server-side dry run): created, updated fields, unchanged."""
    options = Options(app_dir, env, version, image, namespace, bundle, store_url, secret_name, no_namespace)
    _cluster_run(options, kubeconfig, context, dry_run=True)


#: Seconds between two looks at a rolling-out Deployment.
POLL = 2.0


def _strategy(manifest: Manifest, given: str | None) -> str:
    """The strategy of a release on Kubernetes, refused up front when the cluster cannot do it."""
    from sprout.providers.kubernetes.fleet import STRATEGIES, refusal

    if given is None and "strategy" not in manifest.deploy.model_fields_set:
        # The manifest's default is rolling; it is never turned into blue/green behind the user's back.
        raise UserError(
            f"k8s deploy: {manifest.app.name}'s manifest sets no [deploy] strategy, and its default "
            f"({manifest.deploy.strategy}) needs traffic split by weight, which a Service selecting one "
            'colour cannot do; pass --strategy bluegreen or set [deploy] strategy = "bluegreen"'
        )
    chosen = given or manifest.deploy.strategy
    if chosen not in STRATEGIES:
        raise UserError(refusal(chosen))
    return chosen


def _gate(ctx: RenderContext) -> GateOf:
    """The version's own tests against its bundle, on this machine, before anything reaches the cluster."""
    from sprout.cli.gate import gate_here
    from sprout.deploy.gate import GateResult

    def gate(label: str) -> GateResult:
        return gate_here(ctx.manifest.app.name, label, ctx.bundle_sha256, ctx.store_url, ctx.manifest)

    return gate


def _installed(cluster: Cluster, names: Names) -> Colour:
    live = cluster.live_colour(names.namespace, names.service())
    if live is None:
        raise UserError(
            f"k8s: {names.app} is not installed in namespace {names.namespace}; run `sprout k8s apply` first"
        )
    return live


def _live_line(releases: KubernetesReleases, app: str, env: str) -> str:
    """Which colour serves which version now, and what is kept warm for a rollback until when."""
    import time

    groups = releases.fleet.groups(app, env).values()
    live = [f"{g.name} ({g.version})" for g in groups if g.weight > 0]
    warm = [
        f"{g.name} ({g.version}) kept warm until {time.strftime('%H:%M:%S', time.localtime(g.standby_until))}: "
        "`sprout k8s rollback` switches back, `sprout k8s apply` after that scales it to zero"
        for g in groups
        if g.standby_until
    ]
    return "; ".join([f"live: {', '.join(live) or 'nothing'}", *warm])


@k8s.command("deploy")
def deploy(
    app_dir: Path = APP_DIR,
    env: str = ENV,
    version: str | None = VERSION,
    image: str | None = IMAGE,
    namespace: str | None = NAMESPACE,
    bundle: str | None = BUNDLE,
    store_url: str | None = STORE,
    secret_name: str | None = SECRET,
    kubeconfig: Path | None = KUBECONFIG,
    context: str | None = CONTEXT,
    strategy: str | None = typer.Option(
        None,
        "--strategy",
        "-s",
        help="bluegreen (Kubernetes switches a Service from one colour to the other).",
    ),
    skip_tests: bool = typer.Option(
        False, "--skip-tests", help="Do not run the app's tests (recorded in the history)."
    ),
    resume: bool = typer.Option(False, "--resume", help="Continue the unfinished release."),
) -> None:
    """Test gate, then a blue/green release through the release engine: stage the version on the idle
    colour, wait until it is ready, switch the live Service to it; the old colour stays warm."""
    import getpass

    from sprout.deploy.drive import drive
    from sprout.errors import ConflictError
    from sprout.paths import Home
    from sprout.providers.kubernetes.releases import record, release_store, releases

    options = Options(app_dir, env, version, image, namespace, bundle, store_url, secret_name, True)
    ctx = _context(options)
    chosen = None if resume else _strategy(ctx.manifest, strategy)
    if ctx.manifest.app.release:
        from sprout.providers.kubernetes.fleet import release_refusal

        # The engine would stop at its release step; say so before anything runs.
        raise UserError(release_refusal(ctx.manifest.app.release))
    app = ctx.manifest.app.name

    def release(cluster: Cluster) -> tuple[Deployment, str]:
        live = _installed(cluster, ctx.names)
        store = release_store(Home.from_env().ensure(), ctx.names)
        try:
            found = releases(cluster, store, replace(ctx, live=live), _gate(ctx))
            engine = found.engine
            active = engine.active(app, env)
            if resume and active is None:
                raise UserError(f"k8s deploy: {app}/{env} has no unfinished release to resume")
            if not resume and active is not None:
                raise ConflictError(
                    f"k8s deploy: release {active.id} of {active.version} is at step {active.state}; "
                    "resume it with `sprout k8s deploy --resume` or undo it with `sprout k8s rollback`"
                )
            if active is None:
                assert chosen is not None
                record(found, ctx, options.app_dir.resolve())
                if skip_tests:
                    typer.echo("tests skipped (--skip-tests)")
                active = engine.start(
                    app,
                    env,
                    ctx.version,
                    chosen,
                    getpass.getuser(),
                    note="tests skipped (--skip-tests)" if skip_tests else "",
                    skip_tests=skip_tests,
                )
            done = drive(engine, active, typer.echo, POLL)
            return done, _live_line(found, app, env)
        finally:
            store.close()

    done, live = _connected(kubeconfig, context, release)
    typer.echo(live)
    typer.echo(f"release {done.id}: {done.outcome}")
    if done.outcome != "succeeded":
        raise typer.Exit(1)


@k8s.command("rollback")
def rollback(
    app_dir: Path = APP_DIR,
    env: str = ENV,
    namespace: str | None = NAMESPACE,
    kubeconfig: Path | None = KUBECONFIG,
    context: str | None = CONTEXT,
    to: str | None = typer.Option(None, "--to", help="Roll back to this version (default: the one before)."),
    strategy: str | None = typer.Option(
        None,
        "--strategy",
        "-s",
        help="bluegreen, when the rollback is a new release (default: the manifest's).",
    ),
) -> None:
    """Switch the live Service back to the warm old colour, else release the previous version anew."""
    import getpass

    from sprout.deploy.drive import drive
    from sprout.paths import Home
    from sprout.providers.kubernetes.context import DEFAULT_IMAGE, Names, RenderContext
    from sprout.providers.kubernetes.releases import release_store, releases

    manifest = load_manifest(manifest_path(app_dir))
    app = manifest.app.name
    ns = _namespace(namespace, manifest, env)
    names = Names(app, ns)

    def back(cluster: Cluster) -> str:
        live = _installed(cluster, names)
        store = release_store(Home.from_env().ensure(), names)
        try:
            if store.get_environment(app, env) is None:
                raise UserError(
                    f"k8s rollback: {app}/{env} has no release by `sprout k8s deploy` in namespace {ns}"
                )
            environment = store.get_environment(app, env)
            current = store.get_version(app, (environment and environment.current_version) or "")
            current = current or store.latest_version(app)
            if current is None:
                raise UserError(f"k8s rollback: no version of {app} was released in namespace {ns}")
            # Each version renders with its own bundle and manifest; the rest is the folder's settings.
            base = RenderContext(
                current.manifest,
                env,
                current.label,
                current.sha256,
                current.store_url or "",
                manifest.kubernetes.image or DEFAULT_IMAGE,
                ns,
                live,
                manifest.kubernetes.secret_name,
            )
            found = releases(cluster, store, base, _gate(base))
            result = found.engine.rollback(app, env, getpass.getuser(), to, strategy)
            if not result.instant:
                typer.echo(f"rollback to {result.version} is a new release: {result.note}")
                assert result.deployment is not None
                done = drive(found.engine, result.deployment, typer.echo, POLL)
                if done.outcome != "succeeded":
                    raise UserError(
                        f"k8s rollback: release {done.id} of {result.version} {done.outcome}: {done.reason}"
                    )
            return _live_line(found, app, env)
        finally:
            store.close()

    typer.echo(_connected(kubeconfig, context, back))


def register(app: typer.Typer) -> None:
    """Add the `k8s` command group."""
    app.add_typer(k8s, name="k8s")

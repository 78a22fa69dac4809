"""`sprout up`, `status`, `logs`, `down`: the operational commands, all clients of the daemon's API."""

from __future__ import annotations

import contextlib
import difflib
import getpass
import json
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape
from rich.table import Table

from sprout.cli.client import APPLY_TIMEOUT, ApiClient, ensure_daemon
from sprout.cli.console import cli_console
from sprout.cli.daemon_cmd import print_disk
from sprout.cli.follow import follow_release
from sprout.cli.provider_cmd import PROVIDER, elsewhere
from sprout.cli.push_cmd import push
from sprout.controlplane.lifecycle import running_daemon
from sprout.controlplane.router_process import RouterProcess
from sprout.controlplane.status import environments_status
from sprout.errors import NotFoundError, ServiceError, SproutError, UserError
from sprout.healthcheck import describe_check, wrong_path, wrong_path_message
from sprout.paths import Home
from sprout.providers.local import LocalProvider
from sprout.report import fleet_summary
from sprout.spec import manifest_path
from sprout.spec.envname import check_env_name
from sprout.state import StateStore
from sprout.state.store import recorded_environments

if TYPE_CHECKING:
    from sprout.spec import Manifest

#: How often `up` polls the daemon while it waits for the fleet.
POLL = 0.25
#: Extra seconds `up` waits beyond the manifest's health grace before it gives up.
UP_MARGIN = 30.0
DAEMON_EXIT_TIMEOUT = 30.0
#: Instances that die before any is healthy after which `up` stops waiting and shows the logs.
CRASH_LOOP_DEATHS = 3

console = cli_console()


def register(app: typer.Typer) -> None:
    """Add up, status and down to the `sprout` command."""
    app.command("up")(up)
    app.command("status")(status)
    app.command("down")(down)


def up(
    app_dir: Path = typer.Argument(Path("."), help="The app folder (with sprout.toml)."),
    env: str = typer.Option("production", "--env", "-e", help="Environment name."),
    port: int | None = typer.Option(
        None, "--port", "-p", help="Router port (default: the saved one, else 8080)."
    ),
    engine: str | None = typer.Option(
        None,
        "--engine",
        help="Data plane: sprout (the embedded router) or haproxy (Debian's HAProxy); saved like --port.",
    ),
    https_port: int | None = typer.Option(
        None, "--https-port", help="Router HTTPS port for [tls] apps (default: the saved one, else none)."
    ),
    wait: bool = typer.Option(True, "--wait/--no-wait", help="Wait until the fleet is healthy."),
    store: str | None = typer.Option(
        None, "--store", envvar="SPROUT_STORE", help="Artifact store URL (default: a folder in SPROUT_HOME)."
    ),
    provider: str = PROVIDER,
) -> None:
    """Push the app, start the daemon and router if needed, apply the manifest, wait until healthy."""
    if elsewhere(provider, "up"):
        from sprout.cli import aws_cmd

        aws_cmd.up(app_dir=app_dir, env=env, bucket=None, region=None, yes=False)
        return
    check_env_name(env)
    home = Home.from_env().ensure()
    RouterProcess(home).refuse_https(engine, https_port)
    if engine is not None:
        RouterProcess(home).choose_engine(engine)
    app_dir = app_dir.resolve()
    # Here, not at the top: the manifest's models and the planner, which `status` does not need.
    from sprout.plan.conflicts import refuse_host_conflicts_at
    from sprout.spec import load_manifest, resolve_secrets

    manifest = load_manifest(app_dir)
    refuse_host_conflicts_at(home.state_db, manifest, env, str(manifest_path(app_dir)))
    pushed = push(app_dir, home, store)
    secrets = resolve_secrets(manifest, app_dir)
    started_daemon = running_daemon(home) is None
    client = ensure_daemon(home, router_port=port, https_port=https_port)
    try:
        result = client.post(
            "/v1/apply",
            {
                "app_dir": str(app_dir),
                "env": env,
                "port": port,
                "https_port": https_port,
                "user": getpass.getuser(),
                "version": pushed.version,
                "secrets": secrets,
            },
            timeout=APPLY_TIMEOUT,
        )
    except SproutError:
        if started_daemon:
            _stop_if_unused(home, client, manifest.app.name, env)
        raise
    if result.get("changed"):
        console.print(result.get("plan") or "", markup=False)
    else:
        console.print(f"{manifest.app.name}/{env}: no changes ({pushed.version} already applied)")
    if wait and result.get("deployment"):
        follow_release(client, manifest.app.name, env, int(result["deployment"]))
    if wait:
        _wait_healthy(client, manifest, env)
    _print_urls(client, manifest.app.name, env)


def status(
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Environments, their URLs and instances (id, zone, version, port, pid, state, health)."""
    doc = status_document(Home.from_env())
    if as_json:
        typer.echo(json.dumps(doc, indent=2, sort_keys=True))
        return
    d = doc["daemon"]
    if d.get("pid"):
        console.print(f"daemon: pid {d['pid']}, up {d['uptime']:.0f}s, API {d['api_url']}")
        _print_loop_trouble(d)
    else:
        console.print(
            "daemon: not running (state shown as last recorded; start it with `sprout daemon start`)"
        )
    r = doc["router"]
    port = f", port {r['port']}" if r["port"] else ""
    console.print(f"router: {'pid ' + str(r['pid']) if r['running'] else 'not running'}{port}")
    if not doc["environments"]:
        console.print("no environments (create one with `sprout up`)")
    for e in doc["environments"]:
        console.print(
            f"\n[bold]{e['app']}/{e['env']}[/]  {e['url'] or ''}  version {e['version'] or '-'}  "
            f"{fleet_summary(e)}" + ("  (default route)" if e.get("default") else "")
        )
        if e.get("failing"):
            _print_failing(e["failing"])
        for cert in e.get("certificates") or []:
            until = datetime.fromtimestamp(cert["not_after"]).strftime("%Y-%m-%d %H:%M:%S")
            console.print(f"  https://{cert['host']}/ certificate valid until {until}")
        weights = {g["name"]: g["weight"] for g in e["groups"]}
        table = Table("id", "group", "zone", "version", "port", "pid", "state", "health", box=None)
        for i in e["instances"]:
            group = f"{i['group']} ({weights[i['group']]}%)" if i["group"] in weights else i["group"]
            table.add_row(
                i["id"],
                group,
                i["zone"],
                i["version"],
                str(i["port"]),
                str(i["pid"]),
                i["state"],
                i["health"],
            )
        if e["instances"]:
            console.print(table)
        _print_session_nodes(e.get("session_nodes") or [])
        for i in e["instances"]:
            if i.get("check") and not i["check"]["ok"]:
                console.print(f"  {i['id']} last check: {escape(describe_check(i['check']))}", soft_wrap=True)


def _print_session_nodes(nodes: list[dict[str, Any]]) -> None:
    """The managed memcached nodes of an environment, one line each."""
    for node in nodes:
        held = f"{node['items']} items" if node["items"] is not None else "not answering"
        state = f"pid {node['pid']}, {held}" if node["running"] else "down (Sprout restarts it)"
        console.print(f"  memcached zone {node['zone']}: {node['address']}, {state}")


def _print_failing(failing: dict[str, Any]) -> None:
    """The line of an environment whose instances keep failing: since when, how often it retries."""
    since = datetime.fromtimestamp(failing["since"]).strftime("%H:%M:%S")
    console.print(
        f"[bold red]failing since {since}[/] ({failing['failures']} instances failed), retrying every "
        f"{failing['retry_every']:g}s; `sprout down` stops it",
        soft_wrap=True,
    )


def _print_loop_trouble(daemon: dict[str, Any]) -> None:
    """A full disk and any stalled loop, one line each (`sprout daemon status` shows every loop)."""
    print_disk(daemon)
    for loop in daemon.get("loops") or []:
        if loop["stalled"]:
            last = f"{time.time() - loop['last_pass']:.0f}s ago" if loop["last_pass"] else "never"
            console.print(
                f"[bold red]loop {loop['name']} stalled[/]: last good pass {last} (every {loop['period']:g}s); "
                f"last error: {escape(loop['last_error'] or '-')}",
            )


def down(
    app_dir: Path = typer.Argument(Path("."), help="The app folder (with sprout.toml)."),
    env: str = typer.Option("production", "--env", "-e", help="Environment name."),
    app_name: str | None = typer.Option(
        None, "--app", help="App name (default: from the folder's manifest)."
    ),
    provider: str = PROVIDER,
) -> None:
    """Stop an environment's instances and services; with none left, stop the router and the daemon."""
    if elsewhere(provider, "down"):
        from sprout.cli import aws_cmd

        aws_cmd.down(app_dir=app_dir, env=env, bucket=None, region=None, purge=False, yes=False)
        return
    check_env_name(env)
    home = Home.from_env()
    if app_name is None and not manifest_path(app_dir.resolve()).exists() and _serving_nothing(home):
        # No app to name, and none recorded: the daemon (say of `sprout daemon start`) and router run
        # for nothing, and `down` is how a user stops them.
        daemon = running_daemon(home)
        if daemon is not None:
            _shutdown(home, ApiClient.for_daemon(home, daemon))
        else:
            RouterProcess(home).stop()
            console.print("no environments: router stopped")
        return
    name = app_name or _down_name(app_dir, home)
    if not home.root.exists():
        # An unused home: nothing can run from it, and `down` leaves no folders behind.
        console.print(f"{name}/{env}: nothing is running")
        return
    home.ensure()
    if running_daemon(home) is None and _nothing_runs(home):
        stopped = RouterProcess(home).current() is not None and RouterProcess(home).stop()
        console.print(f"{name}/{env}: nothing is running" + ("; router stopped" if stopped else ""))
        return
    client = ensure_daemon(home)
    doc = client.get("/v1/status")
    if any(e["app"] == name and e["env"] == env for e in doc["environments"]):
        result = client.delete(f"/v1/environments/{name}/{env}", user=getpass.getuser())
        console.print(
            f"{name}/{env}: stopped {len(result['stopped'])} instances"
            + (
                f" and {len(result['services'])} memcached nodes ({', '.join(result['services'])})"
                if result["services"]
                else ""
            )
        )
        remaining = int(result["remaining"])
    else:
        remaining = len(doc["environments"])
        try:
            # An `up` that failed before recording the environment may have left service nodes running.
            left = client.delete(f"/v1/environments/{name}/{env}", user=getpass.getuser())
            console.print(
                f"{name}/{env}: no such environment; stopped what its `up` left running "
                f"({len(left['stopped'])} instances, {len(left['services'])} service nodes)",
                markup=False,
                soft_wrap=True,
            )
        except NotFoundError:
            console.print(
                f"{name}/{env}: no such environment; nothing to stop"
                + _other_environments(name, env, doc["environments"]),
                markup=False,
                soft_wrap=True,
            )
    if remaining:
        console.print(f"{remaining} environment(s) still running; the daemon and router stay up")
        return
    _shutdown(home, client)


def _shutdown(home: Home, client: ApiClient) -> None:
    """Stop the daemon and the router of a home with no environment left, and wait for the daemon."""
    daemon = running_daemon(home)
    client.post("/v1/shutdown", {"router": True})
    if daemon is not None:
        deadline = time.monotonic() + DAEMON_EXIT_TIMEOUT
        while daemon.record.alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        if daemon.record.alive():
            raise ServiceError(
                f"daemon pid {daemon.record.pid} did not exit; stop it with `sprout daemon stop`"
            )
    console.print("no environments left: router and daemon stopped")


def _stop_if_unused(home: Home, client: ApiClient, app: str, env: str) -> None:
    """After a failed first `up`: stop what it left running (service nodes started for the release
    phase), then the daemon and router it started, when no environment is left (a failure must not leave
    processes running for nothing)."""
    try:
        if client.get("/v1/status")["environments"]:
            return
        with contextlib.suppress(NotFoundError):
            client.delete(f"/v1/environments/{app}/{env}", user=getpass.getuser())
        daemon = running_daemon(home)
        client.post("/v1/shutdown", {"router": True})
    except SproutError:
        # The failure being reported matters more than this cleanup; `sprout down` does it later.
        return
    deadline = time.monotonic() + DAEMON_EXIT_TIMEOUT
    while daemon is not None and daemon.record.alive() and time.monotonic() < deadline:
        time.sleep(0.05)


def _wait_healthy(client: ApiClient, manifest: Manifest, env: str) -> None:
    """Show progress until the environment runs its desired fleet, healthy; fail fast on a crash loop.
    A Ctrl-C ends the waiting, not the environment, and says so."""
    try:
        _wait_converged(client, manifest, env)
    except KeyboardInterrupt:
        cli_console(stderr=True).print(
            f"{manifest.app.name}/{env}: stopped waiting; the daemon goes on starting it "
            "(`sprout status` shows it, `sprout down` stops it)",
            markup=False,
        )
        raise


def _wait_converged(client: ApiClient, manifest: Manifest, env: str) -> None:
    """Poll the environment until its desired fleet is healthy (see `_wait_healthy`)."""
    started = time.time()
    limit = manifest.health.grace + UP_MARGIN
    deadline = time.monotonic() + limit
    name = manifest.app.name
    with console.status(f"{name}/{env}: waiting for instances") as progress:
        while True:
            found = find_env(client.get("/v1/status"), name, env)
            if found is not None:
                launching = sum(1 for i in found["instances"] if i["state"] == "launching")
                progress.update(
                    f"{name}/{env}: {found['healthy']}/{found['desired']} healthy"
                    + (f", {launching} launching" if launching else "")
                )
                if found["converged"]:
                    break
                _fail_on_wrong_path(name, env, found)
                _fail_on_crash_loop(client, name, env, started, found)
            if time.monotonic() > deadline:
                raise ServiceError(
                    f"{name}/{env}: instances not healthy after {limit:.0f}s{_last_checks(found)}; "
                    + _refused_hint(_checks_of(found))
                    + f"see `sprout logs {found['app_dir'] if found else ''}` and `sprout status`"
                )
            time.sleep(POLL)
    console.print(f"{name}/{env}: {found['healthy']}/{found['desired']} healthy")


def _unhealthy(found: dict[str, Any]) -> list[dict[str, Any]]:
    """The environment's live instances that are not healthy."""
    return [
        i for i in found["instances"] if i["state"] in ("launching", "running") and i["health"] != "healthy"
    ]


def _last_checks(found: dict[str, Any] | None) -> str:
    """`: i-1 GET /x answered 500 in 2 ms; …` for the instances not healthy, or nothing."""
    shown = [f"{i['id']} {describe_check(i.get('check'))}" for i in _unhealthy(found)] if found else []
    return (" (last checks: " + "; ".join(shown) + ")") if shown else ""


def _refused_hint(checks: list[str]) -> str:
    """When every failing health check (as described) was refused: the app never listened where Sprout
    told it to."""
    if not checks or not all("connection refused" in check for check in checks):
        return ""
    return "nothing listens on the instances' ports: does the web command bind $HOST and $PORT (e.g. `--port $PORT`)? "


def _checks_of(found: dict[str, Any] | None) -> list[str]:
    """The last health checks of the environment's unhealthy instances, described."""
    return [describe_check(i["check"]) for i in _unhealthy(found) if i.get("check")] if found else []


def _fail_on_wrong_path(app: str, env: str, found: dict[str, Any]) -> None:
    """Give up early when every check answers the same 4xx: the path is wrong, waiting cannot help."""
    live = _unhealthy(found)
    wrong = wrong_path(i.get("check") for i in live) if live and not found["healthy"] else None
    if wrong is not None:
        raise ServiceError(f"{app}/{env}: {wrong_path_message(*wrong)}")


def _fail_on_crash_loop(client: ApiClient, app: str, env: str, since: float, found: dict[str, Any]) -> None:
    """Give up early when instances keep dying before any is healthy: show why from the logs."""
    if found["healthy"]:
        return
    events = client.get("/v1/events", app=app, env=env, since=since, limit=1000)["events"]
    deaths = [
        e for e in events if e["kind"] in ("instance.exited", "instance.launch_failed", "instance.replace")
    ]
    if len(deaths) < CRASH_LOOP_DEATHS:
        return
    lines = client.get("/v1/logs", app=app, env=env, since=since, limit=12)["lines"]
    tail = "\n".join(f"  {line['instance']} {line['stream']}: {line['msg']}" for line in lines)
    raise ServiceError(
        f"{app}/{env}: {len(deaths)} instances failed before any became healthy "
        f"(last: {deaths[-1]['message']}); the instances' last log lines:\n{tail or '  (none)'}\n"
        + _refused_hint([d["message"] for d in deaths if "last check:" in d["message"]])
        + "fix the app and run `sprout up` again, or `sprout down` to stop retrying"
    )


def _print_urls(client: ApiClient, app: str, env: str) -> None:
    doc = client.get("/v1/status")
    found = find_env(doc, app, env)
    port = doc["router"]["port"]
    default = next((e for e in doc["environments"] if e.get("default")), None)
    if found and found["url"]:
        host = found["hosts"][0]
        console.print(f"URL: {found['url']}", soft_wrap=True)
        console.print(f"  curl --resolve {host}:{port}:127.0.0.1 {found['url']}", soft_wrap=True)
        https = doc["router"].get("https_port")
        if https and found.get("tls"):
            have = {c["host"] for c in found.get("certificates") or []}
            note = "" if host in have else " (once its certificate is issued; `sprout status` shows it)"
            console.print(f"HTTPS: https://{host}:{https}/{note}", soft_wrap=True)
    if port and default is not None:
        console.print(
            f"default route: http://127.0.0.1:{port}/ serves {default['app']}/{default['env']}"
            + ("" if default is found else f" (`sprout route default {app}/{env}` moves it here)"),
            soft_wrap=True,
            markup=False,
        )


def status_document(home: Home) -> dict[str, Any]:
    """The daemon's `/v1/status`, or the same document from the state store when no daemon runs."""
    daemon = running_daemon(home)
    if daemon is not None:
        return ApiClient.for_daemon(home, daemon).get("/v1/status")
    return _offline_status(home)


def find_env(doc: dict[str, Any], app: str, env: str) -> dict[str, Any] | None:
    """One environment of a status document, or None."""
    return next((e for e in doc["environments"] if e["app"] == app and e["env"] == env), None)


def _offline_status(home: Home) -> dict[str, Any]:
    """Status from the state store alone, when no daemon runs (health as last recorded)."""
    router = RouterProcess(home)
    handle = router.current()
    port = handle.port if handle else router.saved_port()
    envs: list[dict[str, Any]] = []
    if home.state_db.exists():
        store = StateStore(home.state_db)
        try:
            envs = environments_status(store, port, tls_dir=home.tls)
            # Imported here: it brings SQLAlchemy (~0.7 s), which no other command of this module needs.
            from sprout.controlplane.resources import Resources

            resources = Resources(home, store)
            for doc in envs:
                doc["session_nodes"] = resources.session_nodes(doc["app"], doc["env"])
        finally:
            store.close()
    return {
        "daemon": {"running": False, "pid": None},
        "router": {
            "running": handle is not None,
            "pid": handle.record.pid if handle else None,
            "port": port,
            "https_port": handle.https_port if handle else router.saved_https_port(),
            "url": f"http://127.0.0.1:{port}/" if port else None,
        },
        "environments": envs,
    }


def _nothing_runs(home: Home) -> bool:
    """True when no environment is recorded and no instance process of this home is alive."""
    if recorded_environments(home.state_db):
        return False
    return not [o for o in LocalProvider(home).observe() if o.state == "running"]


def _serving_nothing(home: Home) -> bool:
    """True when the home records no environment but its daemon or router runs."""
    if not home.root.exists() or recorded_environments(home.state_db):
        return False
    return running_daemon(home) is not None or RouterProcess(home).current() is not None


def _down_name(app_dir: Path, home: Home) -> str:
    """The app `down` stops: the folder's manifest's; without one, say how to name it and what runs."""
    from sprout.spec import load_manifest

    try:
        return load_manifest(app_dir.resolve()).app.name
    except UserError as exc:
        if manifest_path(app_dir.resolve()).exists():
            raise
        known = recorded_environments(home.state_db)
        raise UserError(
            f"{exc}; to stop an app by name, `sprout down --app NAME [--env ENV]`"
            + (f" (environments here: {', '.join(known)})" if known else "")
        ) from exc


def _other_environments(app: str, env: str, environments: list[dict[str, Any]]) -> str:
    """`; running: a/production, b/staging; did you mean `--app a`?` for a `down` that named none of them."""
    if not environments:
        return ""
    names = sorted(f"{e['app']}/{e['env']}" for e in environments)
    text = f"; running: {', '.join(names)}"
    apps = sorted({e["app"] for e in environments})
    close = difflib.get_close_matches(app, apps, n=1, cutoff=0.6)
    if app in apps:
        envs = sorted(e["env"] for e in environments if e["app"] == app)
        text += f"; did you mean `--env {envs[0]}`?"
    elif close:
        text += f"; did you mean `--app {close[0]}`?"
    return text

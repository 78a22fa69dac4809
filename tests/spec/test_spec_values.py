"""Values that passed `sprout validate` and then broke every instance are refused up front, each naming its
field: NUL characters, request paths that are not RFC 9112 origin-forms, capacities above the instances
bound, infinite and NaN numbers. And what people write is read: a size as digits, a byte order mark.

The CLI cases run `python -m sprout validate` as users do; the tables test the same rules in-process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sprout.errors import ManifestError
from sprout.spec import load_manifest, parse_manifest
from sprout.spec.models import InstancesSection
from sprout.spec.paths import request_path_problem
from sprout.spec.scaling import MAX_INSTANCES, ScheduleEntry
from sprout.spec.units import parse_duration, parse_size

APP = '[app]\nname = "shop"\nweb = "run"\n'
NUL = (
    "holds a NUL character (\\x00), which no command, file name or environment variable can carry; remove it"
)


def validate(app: Path, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SPROUT_HOME": str(home)}
    env.pop("SPROUT_STORE", None)
    return subprocess.run(
        [sys.executable, "-m", "sprout", "validate", str(app)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


# (case id, manifest bytes, the exact errors `sprout validate` prints after "<file>: ")
REFUSED_BY_THE_CLI: list[tuple[str, bytes, list[str]]] = [
    (
        "NUL in an env value and in the commands",
        b'[app]\nname = "shop"\nweb = "run \\u0000"\ninstall = "pip\\u0000"\nrelease = "m\\u0000"\n'
        b'test = "\\u0000t"\n[env]\nTOKEN = "a\\u0000b"\n',
        [
            f"app.web: 'run \\x00' {NUL}",
            f"app.install: 'pip\\x00' {NUL}",
            f"app.release: 'm\\x00' {NUL}",
            f"app.test: '\\x00t' {NUL}",
            f"env.TOKEN: 'a\\x00b' {NUL}",
        ],
    ),
    (
        "scheduled capacity above the instances bound",
        APP.encode() + b'[[scaling.schedule]]\ncron = "0 8 * * *"\nmin = 300\nmax = 400\ndesired = 101\n',
        [
            "scaling.schedule[0].min: must be at most 100 (got 300)",
            "scaling.schedule[0].max: must be at most 100 (got 400)",
            "scaling.schedule[0].desired: must be at most 100 (got 101)",
        ],
    ),
    (
        "request paths that would split the request line",
        APP.encode() + b'[health]\npath = "/a\\r\\nX: y"\n[deploy]\nsmoke_path = "/a b"\n',
        [
            "health.path: '/a\\r\\nX: y' is not a valid request path: '\\r' must be percent-encoded as %0D",
            "deploy.smoke_path: '/a b' is not a valid request path: ' ' must be percent-encoded as %20",
        ],
    ),
    (
        "an [env] value too large for exec",
        APP.encode() + b'[env]\nSMALL = "ok"\nBLOB = "' + b"x" * 131_067 + b'"\n',
        [
            'env: "BLOB" is 131,073 bytes as an environment variable; Linux takes at most 131,072 '
            "(keep large data in a file of the bundle or the database)"
        ],
    ),
    (
        "an [env] too large for exec in all",
        APP.encode() + b"[env]\n" + b"".join(b'V%d = "%s"\n' % (i, b"y" * 100_000) for i in range(11)),
        [
            "env: the variables add up to 1,100,045 bytes; at most 1,048,576 fit beside Sprout's own in a "
            "command's environment (keep large data in a file of the bundle or the database)"
        ],
    ),
    (
        "infinite and NaN numbers",
        APP.encode() + b"[scaling]\ntarget = inf\ntolerance = nan\n",
        [
            "scaling.target: must be a finite number (got inf)",
            "scaling.tolerance: must be a finite number (got nan)",
        ],
    ),
]


@pytest.mark.parametrize(
    ("case", "raw", "expected"), REFUSED_BY_THE_CLI, ids=[case for case, _, _ in REFUSED_BY_THE_CLI]
)
def test_sprout_validate_refuses_with_every_field_named(
    tmp_path: Path, case: str, raw: bytes, expected: list[str]
) -> None:
    app = tmp_path / "app"
    app.mkdir()
    (app / "sprout.toml").write_bytes(raw)
    done = validate(app, tmp_path / "home")
    path = app / "sprout.toml"
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == "error: " + "".join(f"{path}: {line}\n" for line in expected)


def test_sprout_validate_reads_a_byte_order_mark_and_a_size_in_digits(tmp_path: Path) -> None:
    """A manifest saved by a Windows editor (UTF-8 with BOM), with `max_body = "100"`: valid, as written."""
    app = tmp_path / "app"
    app.mkdir()
    (app / "sprout.toml").write_bytes(b"\xef\xbb\xbf" + APP.encode() + b'[router]\nmax_body = "100"\n')
    done = validate(app, tmp_path / "home")
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.splitlines()[0] == "✓ sprout.toml is valid"
    assert load_manifest(app).router.max_body == 100


# (case id, manifest text after [app], the exact errors)
REFUSED: list[tuple[str, str, list[str]]] = [
    (
        "NUL in a secret file name",
        '[secrets]\nKEY = "file:a\\u0000"\n',
        [f"secrets.KEY.file: 'a\\x00' {NUL}"],
    ),
    (
        "NUL in a database url",
        '[resources.database]\nengine = "mysql"\nurl = "mysql://shop@h\\u0000/shop"\n',
        [f"resources.database.url: 'mysql://shop@h\\x00/shop' {NUL}"],
    ),
    ("NUL in a tag, a table of strings", '[aws.tags]\nOwner = "a\\u0000"\n', [f"aws.tags: 'a\\x00' {NUL}"]),
    (
        "NUL in an install input",
        'install = "i"\ninstall_inputs = ["a\\u0000"]\n',
        [f"app.install_inputs: 'a\\x00' {NUL}"],
    ),
    (
        "newline after an env name",
        '[env]\n"TOKEN\\n" = "x"\n',
        ['env: "TOKEN\\n" is not a valid environment variable name'],
    ),
    (
        "newline after the app name",
        '[app]\nname = "shop\\n"\nweb = "run"\n',
        [
            'app.name: invalid app name "shop\\n" (2-40 lowercase letters, digits and dashes, starting with a letter)'
        ],
    ),
    (
        "newline after a host name",
        '[router]\nhosts = ["shop.example.com\\n"]\n',
        [
            'router.hosts: invalid host name "shop.example.com\\n" (e.g. "shop.example.com" or "*.example.com")'
        ],
    ),
    (
        "newline after a zone",
        '[instances]\nzones = ["a\\n"]\n',
        ['instances.zones: invalid zone name "a\\n" (lowercase letters, digits, dashes)'],
    ),
    (
        "newline after an AWS region",
        '[aws]\nregion = "eu-central-1\\n"\n',
        ['aws.region: "eu-central-1\\n" is not an AWS region name (e.g. "eu-central-1")'],
    ),
    (
        "scheduled min at 101",
        "[[scaling.schedule]]\nat = 2026-06-14T19:30:00Z\nmin = 101\n",
        ["scaling.schedule[0].min: must be at most 100 (got 101)"],
    ),
    (
        "infinite duration",
        "[deploy]\ndrain = inf\n",
        ["deploy.drain: invalid duration inf: must be a finite number of seconds"],
    ),
    (
        "NaN duration",
        "[health]\ngrace = nan\n",
        ["health.grace: invalid duration nan: must be a finite number of seconds"],
    ),
    (
        "infinite step bound",
        "[[scaling.step]]\nupper = inf\nchange = 1\n",
        ["scaling.step[0].upper: must be a finite number (got inf)"],
    ),
    (
        "negative infinite step bound",
        "[[scaling.step]]\nlower = -inf\nchange = 1\n",
        ["scaling.step[0].lower: must be a finite number (got -inf)"],
    ),
    (
        "infinite latency ratio",
        "[deploy.canary]\nmax_latency_ratio = inf\n",
        ["deploy.canary.max_latency_ratio: must be a finite number (got inf)"],
    ),
    (
        "NaN error rate",
        "[deploy.canary]\nmax_error_rate = nan\n",
        ["deploy.canary.max_error_rate: must be a finite number (got nan)"],
    ),
    (
        "infinite price",
        "[cost.prices]\nsmall = inf\n",
        ["cost.prices.small: must be a finite number (got inf)"],
    ),
    (
        "infinite scale-out percent",
        "[scaling]\nmax_scale_out_percent = inf\n",
        ["scaling.max_scale_out_percent: must be a finite number (got inf)"],
    ),
    (
        "infinite instance count",
        "[instances]\nmax = inf\n",
        ["instances.max: must be a finite number (got inf)"],
    ),
    (
        "size with a fraction of a byte",
        '[router]\nmax_body = "1.5"\n',
        ['router.max_body: invalid size \'1.5\' (use e.g. "64MB", "1GiB", or a number of bytes)'],
    ),
    (
        "negative size in digits",
        '[router]\nmax_body = "-1"\n',
        ['router.max_body: invalid size \'-1\' (use e.g. "64MB", "1GiB", or a number of bytes)'],
    ),
]


@pytest.mark.parametrize(("case", "text", "expected"), REFUSED, ids=[case for case, _, _ in REFUSED])
def test_refused_with_the_field_named(tmp_path: Path, case: str, text: str, expected: list[str]) -> None:
    (tmp_path / "sprout.toml").write_text(text if text.startswith("[app]") else APP + text)
    with pytest.raises(ManifestError) as caught:
        load_manifest(tmp_path)
    assert caught.value.errors == expected
    assert caught.value.exit_code == 2


# (request path, why it cannot be sent, or None when it can)
REQUEST_PATHS: list[tuple[str, str | None]] = [
    ("/", None),
    ("/healthz", None),
    ("/status;v=2", None),
    ("/a=b;c=d/e", None),
    ("/x%2Fy%20z", None),
    ("/q?full=1&x=%2F&y=a/b?c", None),
    ("/~user/-._!$&'()*+,:@", None),
    ("//double", None),
    ("/?", None),
    ("healthz", 'must start with "/"'),
    ("", 'must start with "/"'),
    ("/a b", "' ' must be percent-encoded as %20"),
    ("/a\tb", "'\\t' must be percent-encoded as %09"),
    ("/a\r\nX: y", "'\\r' must be percent-encoded as %0D"),
    ("/a\nb", "'\\n' must be percent-encoded as %0A"),
    ("/a\0", "'\\x00' must be percent-encoded as %00"),
    ("/a\x7f", "'\\x7f' must be percent-encoded as %7F"),
    ("/caf\u00e9", "'é' must be percent-encoded as %C3%A9"),
    ('/a"b', "'\"' must be percent-encoded as %22"),
    ("/a<b>", "'<' must be percent-encoded as %3C"),
    ("/a\\b", "'\\\\' must be percent-encoded as %5C"),
    ("/a{b}", "'{' must be percent-encoded as %7B"),
    ("/a|b", "'|' must be percent-encoded as %7C"),
    ("/a^b", "'^' must be percent-encoded as %5E"),
    ("/a`b", "'`' must be percent-encoded as %60"),
    ("/a[0]", "'[' must be percent-encoded as %5B"),
    ("/a#top", "'#' starts a fragment, which a request never carries; remove it (or write %23)"),
    ("/?q=1#top", "'#' starts a fragment, which a request never carries; remove it (or write %23)"),
    ("/100%", "'%' must start a %xx escape (write %25 for a literal %)"),
    ("/a%2", "'%' must start a %xx escape (write %25 for a literal %)"),
    ("/a%zz", "'%' must start a %xx escape (write %25 for a literal %)"),
    ("/a%41%g1", "'%' must start a %xx escape (write %25 for a literal %)"),
]


@pytest.mark.parametrize(("path", "problem"), REQUEST_PATHS, ids=[repr(p) for p, _ in REQUEST_PATHS])
def test_request_paths(path: str, problem: str | None) -> None:
    assert request_path_problem(path) == problem
    data = {"app": {"name": "shop", "web": "run"}, "health": {"path": path}, "deploy": {"smoke_path": path}}
    if problem is None:
        manifest = parse_manifest(data)
        assert manifest.health.path == manifest.deploy.smoke_path == path
        return
    with pytest.raises(ManifestError) as caught:
        parse_manifest(data)
    if problem.startswith("must"):
        expected = [f"health.path: {problem} (got {path!r})", f"deploy.smoke_path: {problem} (got {path!r})"]
    else:
        refusal = f"{path!r} is not a valid request path: {problem}"
        expected = [f"health.path: {refusal}", f"deploy.smoke_path: {refusal}"]
    assert caught.value.errors == expected


@pytest.mark.parametrize(
    ("text", "size"),
    [("100", 100), ("0", 0), (" 2048 ", 2048), ("100B", 100), ("64MB", 64_000_000), ("1GiB", 1024**3)],
)
def test_a_size_may_be_digits_alone(text: str, size: int) -> None:
    assert parse_size(text) == size
    manifest = parse_manifest(
        {
            "app": {"name": "shop", "web": "run"},
            "router": {"max_body": text},
            "resources": {"sessions": {"memory": text}},
        }
    )
    assert manifest.router.max_body == manifest.resources.sessions.memory == size


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan"), 10**400])
def test_a_duration_is_finite(value: float) -> None:
    with pytest.raises(ValueError, match=r"must be a finite number of seconds$"):
        parse_duration(value)


def test_the_capacity_bound_is_one_constant() -> None:
    def upper(model: type[InstancesSection] | type[ScheduleEntry], name: str) -> object:
        return next(m.le for m in model.model_fields[name].metadata if hasattr(m, "le"))

    assert MAX_INSTANCES == 100
    bounds = {upper(InstancesSection, "min"), upper(InstancesSection, "max")}
    bounds |= {upper(ScheduleEntry, name) for name in ("min", "max", "desired")}
    assert bounds == {MAX_INSTANCES}
    entry = ScheduleEntry.model_validate(
        {"cron": "0 8 * * *", "min": MAX_INSTANCES, "desired": MAX_INSTANCES}
    )
    assert (entry.min, entry.desired) == (MAX_INSTANCES, MAX_INSTANCES)


def test_a_byte_order_mark_is_skipped_and_counted_in_byte_offsets(tmp_path: Path) -> None:
    path = tmp_path / "sprout.toml"
    path.write_bytes(b"\xef\xbb\xbf" + APP.encode())
    assert load_manifest(tmp_path).app.name == "shop"
    path.write_bytes(b'\xef\xbb\xbf[app]\nname = "\xff"\n')
    with pytest.raises(ManifestError) as caught:
        load_manifest(tmp_path)
    assert caught.value.errors == ["not UTF-8 text (invalid start byte at byte 17)"]
    # Only one mark, at the start: a second is content, and TOML refuses it as before.
    path.write_bytes(b"\xef\xbb\xbf\xef\xbb\xbf" + APP.encode())
    with pytest.raises(ManifestError) as caught:
        load_manifest(tmp_path)
    assert caught.value.errors == ["TOML syntax error: Invalid statement (at line 1, column 1)"]


def test_an_environment_stored_before_these_checks_is_still_read() -> None:
    """A manifest an older Sprout recorded in the state store keeps its environment readable (so it can be
    listed, fixed or taken down), as with the `[health]` floors; new input is refused."""
    old = {
        "app": {"name": "shop", "web": "run\0"},
        "health": {"path": "/a b"},
        "deploy": {"smoke_path": "/x#y"},
        "env": {"TOKEN": "a\0b"},
        "scaling": {"schedule": [{"cron": "0 8 * * *", "min": 300, "max": 400, "desired": 350}]},
    }
    manifest = parse_manifest(old, stored=True)
    assert (manifest.app.web, manifest.health.path, manifest.env["TOKEN"]) == ("run\0", "/a b", "a\0b")
    assert manifest.deploy.smoke_path == "/x#y"
    entry = manifest.scaling.schedule[0]
    assert (entry.min, entry.max, entry.desired) == (MAX_INSTANCES, MAX_INSTANCES, MAX_INSTANCES)
    with pytest.raises(ManifestError) as caught:
        parse_manifest(old)
    assert len(caught.value.errors) == 7


def test_commands_may_span_lines_and_hold_any_other_character() -> None:
    """NUL is the one character a process argument cannot carry; `sh -c` takes every other."""
    command = 'exec gunicorn \\\n  --bind "$HOST:$PORT" app:app\t# \x1b[1m é \x7f'
    manifest = parse_manifest({"app": {"name": "shop", "web": command, "release": command}})
    assert manifest.app.web == manifest.app.release == command

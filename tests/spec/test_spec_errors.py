"""Acceptance 5: manifest mistakes, each with its exact error message (file, field path, problem, fix)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sprout.errors import ManifestError, UserError
from sprout.spec import load_manifest

APP = '[app]\nname = "shop"\nweb = "run"\n'
INSTALL = APP + 'install = "pip install -r requirements.txt"\n'

# (case id, manifest text, the exact errors `sprout validate` prints after "<file>: ")
MISTAKES: list[tuple[str, str, list[str]]] = [
    ("no app table", 'web = "run"\n', ["app: required key is missing", "web: unknown key in the top level"]),
    ("app without web", '[app]\nname = "shop"\n', ["app.web: required key is missing"]),
    ("empty web command", '[app]\nname = "shop"\nweb = ""\n', ["app.web: must not be empty (got '')"]),
    (
        "app name with capitals",
        '[app]\nname = "Shop_1"\nweb = "run"\n',
        [
            'app.name: invalid app name "Shop_1" (2-40 lowercase letters, digits and dashes, starting with a letter)'
        ],
    ),
    ("app name not a string", '[app]\nname = 5\nweb = "run"\n', ["app.name: must be a string (got 5)"]),
    ("app is not a table", 'app = "shop"\n', ["app: must be a table (got 'shop')"]),
    (
        "kubernetes namespace not a DNS label",
        APP + '[kubernetes]\nnamespace = "Shop_{env}"\n',
        [
            "kubernetes.namespace: 'Shop_{env}' is not a DNS label (lowercase letters, digits, dashes; at most "
            '63 characters; "{env}" may stand for the environment)'
        ],
    ),
    (
        "kubernetes image with a space",
        APP + '[kubernetes]\nimage = "my image"\n',
        ["kubernetes.image: 'my image' is not an image reference (e.g. registry.example.com/sprout:0.1.0)"],
    ),
    (
        "kubernetes unknown key",
        APP + "[kubernetes]\nreplicas = 3\n",
        ["kubernetes.replicas: unknown key in [kubernetes]"],
    ),
    # TOML has true and false: a quoted "yes" or a 1 is a mistake, not a boolean.
    (
        "boolean as a string",
        APP + '[router]\ncache_static = "yes"\n',
        ["router.cache_static: must be true or false (got 'yes')"],
    ),
    (
        "boolean as a number",
        APP + "[scaling]\nenabled = 1\n",
        ["scaling.enabled: must be true or false (got 1)"],
    ),
    (
        "predictive as a string",
        APP + '[scaling]\ntarget = 50\npredictive = "false"\n',
        ["scaling.predictive: must be true or false (got 'false')"],
    ),
    (
        "install inputs without install",
        APP + 'install_inputs = ["requirements.txt"]\n',
        [
            "app.install_inputs: set without install; add the [app] install command these files feed, "
            "or remove install_inputs"
        ],
    ),
    (
        "no install inputs",
        INSTALL + "install_inputs = []\n",
        [
            'app.install_inputs: must list at least 1 file (e.g. ["requirements.txt"]); remove the key to '
            "install every version afresh"
        ],
    ),
    (
        "install input absolute",
        INSTALL + 'install_inputs = ["/srv/requirements.txt"]\n',
        [
            "app.install_inputs: '/srv/requirements.txt' is an absolute path; name a file inside the app "
            "folder, relative to sprout.toml"
        ],
    ),
    (
        "install input outside the app",
        INSTALL + 'install_inputs = ["requirements.txt", "lib/../../constraints.txt"]\n',
        [
            "app.install_inputs: 'lib/../../constraints.txt' leaves the app folder (\"..\"); name a file "
            "inside the app folder, relative to sprout.toml"
        ],
    ),
    (
        "install input empty",
        INSTALL + 'install_inputs = [""]\n',
        [
            "app.install_inputs: '' is an empty path; name a file inside the app folder, relative to "
            "sprout.toml"
        ],
    ),
    (
        "install input twice",
        INSTALL + 'install_inputs = ["requirements.txt", "requirements.txt"]\n',
        ["app.install_inputs: 'requirements.txt' is listed more than once"],
    ),
    (
        "install outputs without inputs",
        INSTALL + 'install_outputs = ["vendor"]\n',
        [
            "app.install_outputs: set without install_inputs; list the files that decide what install makes "
            '(e.g. install_inputs = ["composer.lock"]), or remove install_outputs'
        ],
    ),
    (
        "install output is the app folder",
        INSTALL + 'install_inputs = ["composer.lock"]\ninstall_outputs = ["vendor", "."]\n',
        [
            "app.install_outputs: '.' is the app folder itself; name a folder inside the app folder, "
            "relative to sprout.toml"
        ],
    ),
    (
        "not python, inputs but no outputs",
        INSTALL + 'install_inputs = ["composer.lock"]\npython = false\n',
        [
            "app: install_inputs with python = false caches only install_outputs; list the folders install "
            'makes (e.g. install_outputs = ["vendor"])'
        ],
    ),
    (
        "install inputs as a string",
        INSTALL + 'install_inputs = "requirements.txt"\n',
        ["app.install_inputs: must be a list (got 'requirements.txt')"],
    ),
    (
        "install input not a string",
        INSTALL + "install_inputs = [1]\n",
        ["app.install_inputs[0]: must be a string (got 1)"],
    ),
    (
        "misspelt section",
        APP + "[helth]\npath = '/'\n",
        ['helth: unknown key in the top level; did you mean "health"?'],
    ),
    (
        "misspelt health key",
        APP + "[health]\nunhealthy_treshold = 3\n",
        ['health.unhealthy_treshold: unknown key in [health]; did you mean "unhealthy_threshold"?'],
    ),
    ("misspelt app key", APP + 'webb = "x"\n', ['app.webb: unknown key in [app]; did you mean "web"?']),
    (
        "unknown key without a near match",
        APP + "[health]\nzzzz = 1\n",
        ["health.zzzz: unknown key in [health]"],
    ),
    (
        "duration in words",
        APP + '[health]\ninterval = "2 seconds"\n',
        ['health.interval: invalid duration \'2 seconds\' (use e.g. "500ms", "2s", "10m")'],
    ),
    (
        "negative duration",
        APP + "[health]\ninterval = -1\n",
        ["health.interval: invalid duration -1: must not be negative"],
    ),
    (
        "boolean duration",
        APP + "[deploy]\ndrain = true\n",
        ['deploy.drain: invalid duration True (use e.g. "500ms", "2s", "10m")'],
    ),
    (
        "timeout longer than interval",
        APP + '[health]\ninterval = "1s"\ntimeout = "2s"\n',
        ["health: timeout (2s) must not exceed interval (1s)"],
    ),
    (
        "zero interval",
        APP + "[health]\ninterval = 0\ntimeout = 0\n",
        [
            "health.interval: 0s is below the minimum of 250ms (shorter intervals spend the router's CPU on "
            'health checks); set interval = "250ms" or more',
            "health.timeout: 0s is below the minimum of 100ms (a shorter check fails whenever the instance "
            'pauses for a moment); set timeout = "100ms" or more',
        ],
    ),
    (
        "health path without slash",
        APP + '[health]\npath = "healthz"\n',
        ["health.path: must start with \"/\" (got 'healthz')"],
    ),
    (
        "threshold zero",
        APP + "[health]\nhealthy_threshold = 0\n",
        ["health.healthy_threshold: must be at least 1 (got 0)"],
    ),
    (
        "threshold in words",
        APP + '[health]\nhealthy_threshold = "two"\n',
        ["health.healthy_threshold: must be a whole number (got 'two')"],
    ),
    (
        "min above max",
        APP + "[instances]\nmin = 5\nmax = 2\n",
        ["instances: min (5) is greater than max (2)"],
    ),
    ("negative min", APP + "[instances]\nmin = -1\n", ["instances.min: must be at least 0 (got -1)"]),
    (
        "desired outside bounds",
        APP + "[instances]\nmin = 1\nmax = 3\ndesired = 5\n",
        ["instances: desired (5) must be between min (1) and max (3)"],
    ),
    (
        "duplicate zones",
        APP + '[instances]\nzones = ["a", "a"]\n',
        ["instances.zones: zones must be unique, got ['a', 'a']"],
    ),
    ("no zones", APP + "[instances]\nzones = []\n", ["instances.zones: must list at least 1 item (got [])"]),
    ("zones as a string", APP + '[instances]\nzones = "a"\n', ["instances.zones: must be a list (got 'a')"]),
    (
        "zone with a space",
        APP + '[instances]\nzones = ["Zone A"]\n',
        ['instances.zones: invalid zone name "Zone A" (lowercase letters, digits, dashes)'],
    ),
    (
        "size with capitals",
        APP + '[instances]\nsize = "Large"\n',
        ["instances.size: must be lowercase letters, digits, dots and dashes (got 'Large')"],
    ),
    (
        "strategy misspelt",
        APP + '[deploy]\nstrategy = "blue-green"\n',
        [
            "deploy.strategy: 'blue-green' is not one of rolling, rolling_with_batch, immutable, bluegreen, canary;"
            ' did you mean "bluegreen"?'
        ],
    ),
    (
        "unknown strategy",
        APP + '[deploy]\nstrategy = "yolo"\n',
        ["deploy.strategy: 'yolo' is not one of rolling, rolling_with_batch, immutable, bluegreen, canary"],
    ),
    (
        "canary steps decreasing",
        APP + "[deploy.canary]\nsteps = [50, 10]\n",
        ["deploy.canary.steps: steps must be increasing percentages in 1..100, got [50, 10]"],
    ),
    (
        "canary not ending at 100",
        APP + "[deploy.canary]\nsteps = [10, 50]\n",
        ["deploy.canary.steps: the last step must be 100, got 50"],
    ),
    (
        "unknown scaling metric",
        APP + '[scaling]\nmetric = "cpu_percent"\n',
        ["scaling.metric: 'cpu_percent' is not one of requests_per_instance, concurrency, cpu, p95_latency"],
    ),
    (
        "zero scaling target",
        APP + "[scaling]\ntarget = 0\n",
        ["scaling.target: must be greater than 0 (got 0)"],
    ),
    (
        "bad cron",
        APP + '[[scaling.schedule]]\ncron = "every day"\nmin = 2\n',
        [
            'scaling.schedule[0].cron: invalid cron expression "every day" (5 fields: minute hour day month weekday)'
        ],
    ),
    (
        "schedule without trigger",
        APP + "[[scaling.schedule]]\nmin = 2\n",
        ['scaling.schedule[0]: give exactly one of "cron" or "at"'],
    ),
    (
        "schedule without action",
        APP + '[[scaling.schedule]]\ncron = "0 * * * *"\n',
        ['scaling.schedule[0]: set at least one of "min", "max" or "desired"'],
    ),
    (
        "misspelt schedule key",
        APP + '[[scaling.schedule]]\ncron = "0 * * * *"\nmins = 2\n',
        ['scaling.schedule[0].mins: unknown key in [scaling.schedule]; did you mean "min"?'],
    ),
    (
        "schedule time in words",
        APP + '[[scaling.schedule]]\nat = "tomorrow"\nmin = 1\n',
        ["scaling.schedule[0].at: must be a date and time such as 2026-06-14T19:30:00Z (got 'tomorrow')"],
    ),
    (
        "session engine misspelt",
        APP + '[resources.sessions]\nengine = "memcache"\n',
        [
            "resources.sessions.engine: 'memcache' is not one of sqlite, memcached, redis; did you mean \"memcached\"?"
        ],
    ),
    (
        "unknown database engine",
        APP + '[resources.database]\nengine = "mongo"\n',
        ["resources.database.engine: 'mongo' is not one of sqlite, mysql, postgres"],
    ),
    (
        "database url of another engine",
        APP + '[resources.database]\nengine = "mysql"\nurl = "postgres://db/shop"\n',
        ['resources.database: url "postgres://db/shop" does not match engine "mysql" (expected mysql://…)'],
    ),
    (
        "session memory in words",
        APP + '[resources.sessions]\nmemory = "lots"\n',
        ['resources.sessions.memory: invalid size \'lots\' (use e.g. "64MB", "1GiB", or a number of bytes)'],
    ),
    (
        "host with capitals",
        APP + '[router]\nhosts = ["Shop.Example.com"]\n',
        ['router.hosts: invalid host name "Shop.Example.com" (e.g. "shop.example.com" or "*.example.com")'],
    ),
    (
        "env variable name",
        APP + '[env]\n1BAD = "x"\n',
        ['env: "1BAD" is not a valid environment variable name'],
    ),
    (
        "env overrides PORT",
        APP + '[env]\nPORT = "8000"\n',
        ['env: "PORT" is set by Sprout and cannot be overridden'],
    ),
    (
        "env overrides SPROUT_ variable",
        APP + '[env]\nSPROUT_APP = "x"\n',
        ['env: "SPROUT_APP" is set by Sprout and cannot be overridden'],
    ),
    ("env value not a string", APP + "[env]\nDEBUG = 1\n", ["env.DEBUG: must be a string (got 1)"]),
    (
        "secret reference scheme",
        APP + '[secrets]\nKEY = "vault:x"\n',
        ['secrets: secret "KEY": use "env:NAME", "file:PATH" or a table'],
    ),
    (
        "secret with two sources",
        APP + '[secrets.KEY]\nenv = "A"\nfile = "b"\n',
        ['secrets.KEY: give exactly one of "env" or "file"'],
    ),
    (
        "name in env and secrets",
        APP + '[env]\nKEY = "x"\n[secrets]\nKEY = "env:KEY"\n',
        ['(top level): "KEY" defined in both [env] and [secrets] (keep one)'],
    ),
    (
        "literal database password",
        APP + '[resources.database]\nengine = "mysql"\nurl = "mysql://shop:hunter2@127.0.0.1/shop"\n',
        [
            "resources.database.url: holds a literal password; remove it from the url and give it as a "
            'secret: password = "env:DB_PASSWORD" (or "file:PATH") in [resources.database]'
        ],
    ),
    (
        "database password reference scheme",
        APP + '[resources.database]\nengine = "mysql"\nurl = "mysql://shop@h/shop"\npassword = "hunter2"\n',
        ['resources.database.password: secret "password": use "env:NAME", "file:PATH" or a table'],
    ),
    (
        "literal session store password",
        APP + '[resources.sessions]\nengine = "redis"\nurl = "redis://:hunter2@127.0.0.1:6379/0"\n',
        [
            "resources.sessions.url: holds a literal password; remove it from the url and give it as a "
            'secret: password = "env:SESSIONS_PASSWORD" (or "file:PATH") in [resources.sessions]'
        ],
    ),
    (
        "session store password for memcached",
        APP + '[resources.sessions]\nengine = "memcached"\nurl = "memcached://h:1"\npassword = "env:P"\n',
        ['resources.sessions: password is set for engine "memcached", which takes none; remove it'],
    ),
    (
        "database password for a url without a user",
        APP + '[resources.database]\nengine = "mysql"\nurl = "mysql://h/shop"\npassword = "env:P"\n',
        [
            'resources.database: url "mysql://h/shop" names no user for its password; write it as mysql://user@host/name'
        ],
    ),
    (
        "database password without url",
        APP + '[resources.database]\nengine = "mysql"\npassword = "env:DB_PASSWORD"\n',
        ["resources.database: password is set without a url; add the url it is the password of"],
    ),
    (
        "price in words",
        APP + '[cost.prices]\nsmall = "cheap"\n',
        ["cost.prices.small: must be a number (got 'cheap')"],
    ),
    (
        "zero log retention",
        APP + "[logs]\nretention_days = 0\n",
        ["logs.retention_days: must be at least 1 (got 0)"],
    ),
    (
        "aws region",
        APP + '[aws]\nregion = "europe"\n',
        ['aws.region: "europe" is not an AWS region name (e.g. "eu-central-1")'],
    ),
    (
        "several mistakes at once",
        APP + '[health]\ninterval = "soon"\n[instances]\nmin = -1\n',
        [
            'health.interval: invalid duration \'soon\' (use e.g. "500ms", "2s", "10m")',
            "instances.min: must be at least 0 (got -1)",
        ],
    ),
]


def test_the_table_covers_enough_distinct_mistakes() -> None:
    assert len({case for case, _, _ in MISTAKES}) == len(MISTAKES) >= 25


@pytest.mark.parametrize(("case", "text", "expected"), MISTAKES, ids=[case for case, _, _ in MISTAKES])
def test_mistake_has_exact_message(tmp_path: Path, case: str, text: str, expected: list[str]) -> None:
    path = tmp_path / "sprout.toml"
    path.write_text(text)
    with pytest.raises(ManifestError) as caught:
        load_manifest(tmp_path)
    assert caught.value.errors == expected
    assert str(caught.value) == "\n".join(f"{path}: {line}" for line in expected)
    assert caught.value.exit_code == 2


def test_toml_syntax_error_names_file_line_and_column(tmp_path: Path) -> None:
    (tmp_path / "sprout.toml").write_text('[app]\nname = "shop\n')
    with pytest.raises(ManifestError) as caught:
        load_manifest(tmp_path)
    assert caught.value.errors == ["TOML syntax error: Illegal character '\\n' (at line 2, column 13)"]


def test_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "sprout.toml").write_bytes(b'[app]\nname = "\xff"\n')
    with pytest.raises(ManifestError) as caught:
        load_manifest(tmp_path)
    assert caught.value.errors == ["not UTF-8 text (invalid start byte at byte 14)"]


def test_missing_manifest_says_how_to_create_one(tmp_path: Path) -> None:
    with pytest.raises(UserError) as caught:
        load_manifest(tmp_path)
    assert (
        str(caught.value) == f"{tmp_path / 'sprout.toml'}: no manifest here (create one with `sprout init`)"
    )

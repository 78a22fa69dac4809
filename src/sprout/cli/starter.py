"""The starter `sprout.toml` that `sprout init` writes: every section shown, commented, with its default."""

from __future__ import annotations

import re

STARTER = """\
# sprout.toml: how Sprout builds, runs, scales and releases this app.
# Reference: docs/manifest.md. Editor completion: `sprout schema > sprout.schema.json`.
# Only [app] name and web are required; every commented line shows the default or an example.
# Durations: "500ms", "2s", "10m", "1h". Sizes: "64MB", "1GiB".

[app]
name = "{name}"
# Serves HTTP on $HOST:$PORT; run with `sh -c` in the unpacked bundle, virtualenv first on PATH.
web = "python -m http.server --bind $HOST $PORT"
# install = "pip install -r requirements.txt"   # once per bundle at bootstrap, cached per version
# install_inputs = ["requirements.txt"]         # unchanged files: reuse the last version's venv
# install_outputs = ["node_modules"]            # folders install makes, reused with the venv
# python = true                                 # false (PHP, Node): no virtualenv, no Python variables
# release = "python -m {module}.migrate"          # once per deploy, before traffic moves
# test = "python -m pytest -q"                    # the app's own tests gate every release

# [health]
# path = "/"                  # must answer 2xx/3xx when the instance is healthy
# interval = "2s"
# timeout = "1s"              # at most the interval
# healthy_threshold = 2       # consecutive passes before an instance gets traffic
# unhealthy_threshold = 3     # consecutive failures before it loses traffic
# grace = "1m"                # how long a new instance may take to become healthy

# [instances]
# size = "small"              # priced by [cost]; instance type on aws
# min = 2
# max = 10
# desired = 2                 # initial capacity (default: min)
# zones = ["a", "b"]          # instances are spread evenly across zones

# [scaling]
# enabled = true
# metric = "requests_per_instance"   # concurrency | cpu | p95_latency
# target = 50                        # per instance
# tolerance = 0.1                    # no change within ±10 % of target
# scale_in_stabilization = "5m"
# warmup = "30s"
# cooldown = "0s"
# predictive = false

# [[scaling.schedule]]               # scheduled capacity, e.g. before kick-off
# cron = "30 19 * 6 *"               # UTC; or at = 2026-06-14T19:30:00Z for a one-off
# min = 8
# duration = "3h"

# [[scaling.step]]                   # step policy: add or remove instances by metric band
# lower = 100
# change = 2

# [deploy]
# strategy = "rolling"        # rolling | rolling_with_batch | immutable | bluegreen | canary
# batch_size = 1
# rollback_window = "10m"     # how long the old fleet stays warm for instant rollback
# drain = "30s"               # in-flight requests may finish this long
# health_timeout = "2m"
# smoke_path = "/healthz"

# [deploy.canary]
# steps = [5, 25, 50, 100]    # traffic percentages
# interval = "30s"
# max_error_rate = 0.01
# max_latency_ratio = 1.5
# min_requests = 20

# [resources.sessions]        # SESSION_STORE_URL
# engine = "sqlite"           # sqlite | memcached | redis
# memory = "64MiB"            # per managed memcached node

# [resources.database]        # DATABASE_URL
# engine = "sqlite"           # sqlite | mysql | postgres
# url = "sqlite:////srv/{name}/data.db"  # an external database (like an RDS endpoint); SQLite: an
#                             # absolute path (4 slashes), never one relative to the replaced app folder

# [router]
# hosts = ["{name}.localhost"]
# cache_static = false        # cache `Cache-Control: public` GET responses at the edge
# max_body = "10MiB"
# default_route = false      # `up` makes http://127.0.0.1:PORT/ (no known host) serve this environment

# [tls]                       # HTTPS for the hosts above: `sprout up --https-port 443`
# email = "ops@example.com"   # certificates from Let's Encrypt by ACME; or cert + key files
# hsts = "365d"               # opt-in Strict-Transport-Security

# [env]                       # plain settings, visible in the state store
# LOG_LEVEL = "info"

# [secrets]                   # values read at deploy time, never stored by Sprout
# API_KEY = "env:API_KEY"     # or { file = "secrets/api_key.txt" }

# [cost]
# currency = "USD"
# [cost.prices]               # per instance-hour, by size
# small = 0.0208

# [logs]
# retention_days = 14

# [aws]                       # only for --provider aws
# region = "eu-central-1"
# cdn = false

# [kubernetes]                # only for `sprout k8s`; each key has a command-line override
# image = "registry.example.com/sprout:0.1.0"
# namespace = "{name}-{env}"  # {env} stands for the environment
"""


def starter_manifest(name: str) -> str:
    """The starter manifest text for an app called `name`."""
    return STARTER.replace("{name}", name).replace("{module}", name.replace("-", "_"))


def app_name_from(folder: str) -> str:
    """A valid app name guessed from a folder name (`My_Shop` → `my-shop`)."""
    name = re.sub(r"[^a-z0-9-]+", "-", folder.lower()).strip("-")
    name = re.sub(r"^[^a-z]+", "", name)[:40].rstrip("-")
    return name if len(name) >= 2 else "app"

#!/usr/bin/env bash
# Install and start the services Sprout's tests talk to. In CI a service that cannot be started fails
# the run; on a developer machine without root it only warns (the tests then fail with a clear message).
set -uo pipefail

fail=0
is_root() { [ "$(id -u)" = 0 ]; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
say() { printf 'services: %s\n' "$*"; }
need() {
  say "$1"
  if [ "${CI:-}" = "true" ]; then fail=1; fi
}
wait_port() {
  for _ in $(seq 1 60); do port_open "$1" && return 0; sleep 0.5; done
  return 1
}

# memcached: the tests start their own nodes on free ports; they need the binary.
if ! command -v memcached >/dev/null 2>&1; then
  if is_root; then
    say "installing memcached (apt-get)"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq memcached; } >/dev/null 2>&1
  fi
  command -v memcached >/dev/null 2>&1 || need "memcached is missing: apt-get install memcached"
fi

# MariaDB on 127.0.0.1:3306, root without password.
if ! port_open 3306; then
  if is_root && command -v mariadbd >/dev/null 2>&1; then
    say "starting MariaDB"
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd >/dev/null 2>&1 || true
  elif is_root; then
    say "installing MariaDB (apt-get)"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mariadb-server; } >/dev/null 2>&1
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd >/dev/null 2>&1 || true
  fi
  wait_port 3306 || need "MariaDB is not reachable on 127.0.0.1:3306"
fi

# PostgreSQL on 127.0.0.1:5432 (optional engine; started when present).
if ! port_open 5432 && is_root && command -v pg_ctlcluster >/dev/null 2>&1; then
  say "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start >/dev/null 2>&1 || true
  wait_port 5432 || say "PostgreSQL did not start (only its optional tests need it)"
fi

# Redis on 127.0.0.1:6379 (session engine "redis").
if ! port_open 6379 && command -v redis-server >/dev/null 2>&1; then
  say "starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /tmp --logfile /tmp/sprout-ci-redis.log >/dev/null 2>&1 || true
  wait_port 6379 || need "Redis is not reachable on 127.0.0.1:6379"
fi

[ "$fail" = 0 ] && say "ready (memcached binary, MariaDB, Redis)"
exit "$fail"

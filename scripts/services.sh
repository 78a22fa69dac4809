#!/usr/bin/env bash
# Install, configure and start every service and tool Sprout's tests talk to, as on a plain Debian 12:
# memcached (binary; the tests start their own nodes), MariaDB, PostgreSQL and Redis on loopback with the
# logins the tests use (root without password on MariaDB, postgres without password on PostgreSQL — from
# 127.0.0.1 only), and the tools of this round's tests: pebble (ACME test server), php-cli with
# php-memcached and php-mysql, haproxy. In CI (CI=true) a service that cannot be installed or started
# fails the run; on a developer machine without root it only warns (the tests then fail with a clear
# message).
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

# Debian packages: install what is missing, in one apt run (apt-get update once).
declare -A wanted=(
  [memcached]=memcached
  [mariadbd]=mariadb-server
  [mariadb]=mariadb-client
  [pg_ctlcluster]=postgresql
  [psql]=postgresql-client
  [redis-server]=redis-server
  [pebble]=pebble
  [php]=php-cli
  [haproxy]=haproxy
)
missing=()
for tool in "${!wanted[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || missing+=("${wanted[$tool]}")
done
php_has() { local mods; mods="$(php -m 2>/dev/null)"; grep -qix "$1" <<<"$mods"; }
if command -v php >/dev/null 2>&1; then
  php_has memcached || missing+=(php-memcached)
  php_has pdo_mysql || missing+=(php-mysql)
else
  missing+=(php-memcached php-mysql)
fi
if [ "${#missing[@]}" -gt 0 ]; then
  if is_root; then
    say "installing ${missing[*]} (apt-get)"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"; } \
      >/tmp/sprout-services-apt.log 2>&1 || say "apt-get failed; see /tmp/sprout-services-apt.log"
  fi
fi
for tool in memcached pebble pebble-challtestsrv php haproxy; do
  command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || need "$tool is missing: apt-get install ${wanted[$tool]:-pebble}"
done
if command -v php >/dev/null 2>&1; then
  php_has memcached || need "PHP's memcached extension is missing: apt-get install php-memcached"
  php_has pdo_mysql || need "PHP's pdo_mysql extension is missing: apt-get install php-mysql"
fi

# MariaDB on 127.0.0.1:3306; root from loopback without a password (Debian's default is unix_socket only).
if ! port_open 3306 && is_root && [ -x /usr/sbin/mariadbd ]; then
  say "starting MariaDB"
  install -d -o mysql -g mysql /run/mysqld
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql >/dev/null 2>&1
fi
wait_port 3306 || need "MariaDB is not reachable on 127.0.0.1:3306"
if port_open 3306 && ! mariadb -h 127.0.0.1 -u root -e 'SELECT 1' >/dev/null 2>&1 && is_root; then
  say "MariaDB: letting root log in from 127.0.0.1 without a password (test logins)"
  mariadb -u root <<'SQL' >/dev/null 2>&1
ALTER USER 'root'@'localhost' IDENTIFIED VIA mysql_native_password USING PASSWORD('') OR unix_socket;
CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '';
GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
FLUSH PRIVILEGES;
SQL
fi
mariadb -h 127.0.0.1 -u root -e 'SELECT 1' >/dev/null 2>&1 || need "MariaDB: root cannot log in from 127.0.0.1 without a password"

# PostgreSQL on 127.0.0.1:5432; postgres from loopback without a password.
if ! port_open 5432 && is_root && command -v pg_ctlcluster >/dev/null 2>&1; then
  say "starting PostgreSQL"
  version="$(ls /etc/postgresql | sort -n | tail -n 1)"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start >/dev/null 2>&1
fi
wait_port 5432 || need "PostgreSQL is not reachable on 127.0.0.1:5432"
pg_ok() { psql -h 127.0.0.1 -U postgres -d postgres -tAc 'SELECT 1' >/dev/null 2>&1 </dev/null; }
if port_open 5432 && ! pg_ok && is_root; then
  say "PostgreSQL: letting postgres log in from 127.0.0.1 without a password (test logins)"
  for hba in /etc/postgresql/*/main/pg_hba.conf; do
    grep -q '^host all postgres 127.0.0.1/32 trust' "$hba" \
      || sed -i '1i host all postgres 127.0.0.1/32 trust' "$hba"
  done
  version="$(ls /etc/postgresql | sort -n | tail -n 1)"
  pg_ctlcluster --skip-systemctl-redirect "$version" main reload >/dev/null 2>&1
  sleep 1
fi
pg_ok || need "PostgreSQL: postgres cannot log in from 127.0.0.1 without a password"

# Redis on 127.0.0.1:6379 (session engine "redis"), nothing kept on disk.
if ! port_open 6379 && command -v redis-server >/dev/null 2>&1; then
  say "starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /tmp --logfile /tmp/sprout-ci-redis.log >/dev/null 2>&1
fi
wait_port 6379 || need "Redis is not reachable on 127.0.0.1:6379"

[ "$fail" = 0 ] && say "ready (memcached, MariaDB, PostgreSQL, Redis, pebble, php, haproxy)"
exit "$fail"

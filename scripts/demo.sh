#!/usr/bin/env bash
# `make demo`: bring up the microsite on embedded defaults (SQLite database and sessions, folder artifact
# store) under ./.sprout, print its URL, and tear everything down on Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
export SPROUT_HOME="${SPROUT_HOME:-$PWD/.sprout}"
APP="${APP:-examples/microsite}"
[ -f "$APP/sprout.toml" ] || APP=examples/hello
SPROUT=.venv/bin/sprout

cleanup() {
  trap - INT TERM EXIT
  echo
  echo "demo: tearing down $APP …"
  "$SPROUT" down "$APP" || true
}
trap cleanup INT TERM EXIT

"$SPROUT" up "$APP" --port "${PORT:-8080}"
echo "demo: running; press Ctrl-C to stop and remove everything."
sleep infinity &
wait $!

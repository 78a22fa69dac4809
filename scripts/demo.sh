#!/usr/bin/env bash
# `make demo`: bring up the microsite on embedded defaults (SQLite database and sessions, folder artifact
# store) under ./.sprout, print its URL, and tear everything down on Ctrl-C.
#
# The example's own manifest is the production showcase (MariaDB + memcached across zones); the demo runs
# a copy of the example without its [resources.*] tables, so nothing but Python is needed.
set -euo pipefail
# Everything the demo writes under its home is private to the user, like what Sprout writes itself.
umask 077
cd "$(dirname "$0")/.."
export SPROUT_HOME="${SPROUT_HOME:-$PWD/.sprout}"
# The app's dependencies install faster without byte-compiling every file (Python compiles what it imports).
export PIP_NO_COMPILE="${PIP_NO_COMPILE:-1}"
SPROUT=.venv/bin/sprout
SOURCE="${APP:-examples/microsite}"
APP_DIR="$SPROUT_HOME/demo/$(basename "$SOURCE")"

rm -rf "$APP_DIR"
mkdir -p "$APP_DIR"
cp -R "$SOURCE/." "$APP_DIR/"
.venv/bin/python - "$APP_DIR/sprout.toml" <<'PY'
import re, sys
path = sys.argv[1]
kept, skipping = [], False
for line in open(path, encoding="utf-8").read().splitlines():
    if re.match(r"^\s*\[", line):
        skipping = re.match(r"^\s*\[resources\.", line) is not None
    if not skipping:
        kept.append(line)
open(path, "w", encoding="utf-8").write("\n".join(kept) + "\n")
PY

cleanup() {
  trap - INT TERM HUP EXIT
  # The terminal may be gone (closed window, dropped SSH, a reader that quit): a failed echo must not
  # stop the teardown.
  trap '' PIPE
  set +e
  [[ -n "${WAITER:-}" ]] && kill "$WAITER" 2>/dev/null
  echo
  echo "demo: tearing down …"
  # tee -p keeps `down` writing (to the log) when the terminal is gone, so it finishes the teardown.
  "$SPROUT" down "$APP_DIR" 2>&1 | tee -p -a "$SPROUT_HOME/demo-teardown.log"
  TORN_DOWN=${PIPESTATUS[0]}
}
# Ctrl-C is how the demo ends: a clean teardown exits 0 (a failed one with `down`'s status).
stop() {
  cleanup
  exit "$TORN_DOWN"
}
trap stop INT TERM HUP
trap cleanup EXIT

echo "demo: $SOURCE on embedded defaults (SQLite database and sessions); state in $SPROUT_HOME"
"$SPROUT" up "$APP_DIR" --port "${PORT:-8080}"
echo "demo: running; press Ctrl-C to stop and remove everything."
# A background job of a script ignores Ctrl-C, so the cleanup ends this sleep itself.
sleep infinity &
WAITER=$!
wait "$WAITER"

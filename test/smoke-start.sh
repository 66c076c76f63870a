#!/usr/bin/env bash
# The README's start command on the embedded default: the sample observer must fire visibly,
# and SIGTERM must stop the worker with exit code 0.
set -uo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp)
env -u DATABASE_URL PORT=0 npm start >"$log" 2>&1 &
pid=$!
for _ in $(seq 1 120); do
  if grep -q 'shipped to ada@example.com' "$log"; then break; fi
  if ! kill -0 "$pid" 2>/dev/null; then break; fi
  sleep 0.5
done
if ! grep -q 'shipped to ada@example.com' "$log"; then
  echo "npm start: the sample observer did not fire" >&2
  cat "$log" >&2
  kill "$pid" 2>/dev/null
  exit 1
fi
# As a process manager would: SIGTERM to npm, which passes it on to the worker.
kill -TERM "$pid"
wait "$pid"
code=$?
grep -q '"msg":"stopped"' "$log" || { echo "worker did not stop cleanly (exit $code)" >&2; cat "$log" >&2; exit 1; }
echo "npm start: sample observer fired; worker stopped cleanly"

#!/usr/bin/env bash
# Runs the steps of README.md against a fresh Envoy and checks each answer.
# Usage (from the repository root, after `make build envoy`):
#   examples/single-envoy/check.sh            # ENVOY defaults to .venv/bin/envoy
set -euo pipefail
cd "$(dirname "$0")/../.."
ENVOY="${ENVOY:-.venv/bin/envoy}"
log=$(mktemp)
"$ENVOY" -c examples/single-envoy/envoy.yaml --concurrency 2 --disable-hot-restart \
    --log-level warn >"$log" 2>&1 &
envoy_pid=$!
trap 'kill "$envoy_pid" 2>/dev/null; wait "$envoy_pid" 2>/dev/null; rm -f "$log"' EXIT

for _ in $(seq 100); do
    curl -sf http://127.0.0.1:18901/ready >/dev/null 2>&1 && break
    sleep 0.1
done

failures=0
expect() { # expect NAME WANT GOT
    if [[ "$2" == "$3" ]]; then echo "ok    $1"; else echo "FAIL  $1: want $2, got $3"; failures=$((failures + 1)); fi
}
status() { curl -s -o /dev/null -w '%{http_code}' "$@"; }

# 1. Three requests per minute per API key; the fourth is refused.
codes=$(for _ in 1 2 3 4; do status -H 'x-api-key: alice' http://127.0.0.1:18000/api/orders; echo -n ' '; done)
expect "1. alice's fourth request is limited" "200 200 200 429 " "$codes"
expect "1. bob has his own bucket" 200 "$(status -H 'x-api-key: bob' http://127.0.0.1:18000/api/orders)"
retry=$(curl -s -o /dev/null -D - -H 'x-api-key: alice' http://127.0.0.1:18000/api/orders | tr -d '\r' | awk -F': ' 'tolower($1)=="retry-after"{print $2}')
expect "1. the 429 says when to retry" yes "$([[ "$retry" -ge 1 && "$retry" -le 60 ]] && echo yes || echo "no ($retry)")"

# 2. The inventory upstream fails; after three failures the breaker answers.
codes=$(for _ in 1 2 3; do status http://127.0.0.1:18000/inventory/42; echo -n ' '; done)
expect "2. three upstream failures pass through" "503 503 503 " "$codes"
body=$(curl -s http://127.0.0.1:18000/inventory/42)
expect "2. the open breaker answers with the fallback" '{"error":"inventory unavailable"}' "$body"

# 3. The catalog is cached: a miss, then a hit.
first=$(curl -s -D - -o /dev/null http://127.0.0.1:18000/catalog/items | tr -d '\r' | awk -F': ' 'tolower($1)=="cache-status"{print $2}')
second=$(curl -s -D - -o /dev/null http://127.0.0.1:18000/catalog/items | tr -d '\r' | awk -F': ' 'tolower($1)=="cache-status"{print $2}')
expect "3. the first catalog request is stored" "floodgate; fwd=uri-miss; fwd-status=200; stored" "$first"
expect "3. the second is a hit" "floodgate; hit" "${second%%; ttl=*}"

# 4. Prometheus sees the rule name as a label.
limited=$(curl -s http://127.0.0.1:18901/stats/prometheus | grep -c 'floodgate_ratelimit_rule_limited{rule="per-api-key"}' || true)
expect "4. prometheus series per rule" 1 "$limited"

if ((failures > 0)); then
    echo "--- envoy log ---"; cat "$log"; exit 1
fi
echo "all steps passed"

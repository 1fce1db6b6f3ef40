#!/usr/bin/env bash
# The steps of README.md against a running cluster (run.sh --check runs
# them against a fresh one).
set -euo pipefail
failures=0
expect() {
    if [[ "$2" == "$3" ]]; then echo "ok    $1"; else echo "FAIL  $1: want $2, got $3"; failures=$((failures + 1)); fi
}

# 1. Twenty requests from one client through the front door: each node
#    keeps its own buckets (shared data is per Envoy process), so the
#    client gets 5 per node: 10 in all.
admitted=0
for _ in $(seq 20); do
    code=$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:19000/api/x)
    [[ "$code" == 200 ]] && admitted=$((admitted + 1))
done
expect "1. one client, two nodes, limit 5 each" 10 "$admitted"

# 2. Each node counted its own share.
for admin in 19910 19920; do
    allowed=$(curl -s "http://127.0.0.1:$admin/stats?filter=floodgate.ratelimit.rule.per-client.allowed" | awk '{print $2}')
    expect "2. node on admin $admin allowed 5" 5 "$allowed"
done

((failures == 0)) && echo "all steps passed"
exit "$failures"

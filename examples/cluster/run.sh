#!/usr/bin/env bash
# Starts the cluster as local processes: the front Envoy (with the canned
# upstream) and two floodgate nodes. Ctrl-C stops all three.
# Usage (from the repository root, after `make build envoy`):
#   examples/cluster/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
ENVOY="${ENVOY:-.venv/bin/envoy}"
work=$(mktemp -d)
sed -e 's/19010/19020/; s/19910/19920/' examples/cluster/node.yaml >"$work/node-b.yaml"

pids=()
stop() { kill "${pids[@]}" 2>/dev/null || true; wait "${pids[@]}" 2>/dev/null || true; rm -rf "$work"; }
trap stop EXIT INT TERM

start() { # start NAME CONFIG
    "$ENVOY" -c "$2" --concurrency 2 --disable-hot-restart --log-level warn >"$work/$1.log" 2>&1 &
    pids+=($!)
}
start front examples/cluster/front.yaml
start node-a examples/cluster/node.yaml
start node-b "$work/node-b.yaml"

for admin in 19900 19910 19920; do
    for _ in $(seq 100); do
        curl -sf "http://127.0.0.1:$admin/ready" >/dev/null 2>&1 && break
        sleep 0.1
    done
done
echo "cluster ready: http://127.0.0.1:19000 (nodes' admin on 19910 and 19920)"
if [[ "${1:-}" == "--check" ]]; then
    examples/cluster/check.sh
else
    wait
fi

#!/usr/bin/env python3
"""floodgate's cost against plain Envoy, a native filter and Envoy's own local answers.

`make bench` runs this script. It starts two Envoys on 127.0.0.1:

- an upstream Envoy that answers every request itself (`direct_response`);
- a proxy Envoy (`--concurrency 1`) with one listener per variant: plain
  proxying (the baseline), four controls (Envoy's native local rate limit,
  a do-nothing wasm filter, a `direct_response` answer, the do-nothing
  filter in front of a `direct_response`) and floodgate on each of its
  paths.

With `--prices` (`PRICES=1`) it also prices proxy-wasm host calls: one
listener per call, each with a probe filter (`tests/probe-filter`) that makes
the call 10 times per request; the CPU time per request above the do-nothing
filter's in the same round, divided by 10, is what one call costs.

The proxy is pinned to one core, the upstream and wrk to another, so the
proxy's CPU time is its own. For every round it runs wrk against the baseline
and the variants in the order A X A Y A ..., so every variant run sits between
two baseline runs, and compares each run with the mean of its two neighbours:
slow drift of a shared machine cancels out. Each run is checked against
Envoy's stats (and floodgate's counters): a run that did not take the path it
measures is void.

Variants whose section this build of floodgate refuses ("not supported by
this build") are left out and listed in the report.

Only the Python standard library is used, so the bench needs nothing but
Python 3, Envoy and wrk; a script rather than a Rust test, because the work is
orchestration (processes, pinning, /proc, wrk's output), not HTTP. Every process it starts is stopped at the end, by
pid, also on failure or Ctrl-C.
"""

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))

# Every upstream answer has the same body, so the variants differ only in
# what the proxy does with it.
BODY = '{"id":42,"name":"floodgate bench","items":[1,2,3,4,5,6,7,8]}\n'

# A limit no run can reach (requests per second, per key).
UNREACHABLE = 1_000_000_000

# Cluster circuit-breaker thresholds far above anything the bench sends.
NO_LIMITS = {
    "thresholds": [
        {
            "max_connections": UNREACHABLE,
            "max_pending_requests": UNREACHABLE,
            "max_requests": UNREACHABLE,
            "max_retries": UNREACHABLE,
        }
    ]
}


class Variant:
    """One listener of the proxy Envoy and what a run against it must show.

    `expect` is the status class every answer must have ("2xx", "4xx" or
    "5xx"); `upstream` says whether every request reaches the upstream
    (True) or none does (False); `counters` maps a floodgate counter to the
    least it must grow per request.
    """

    def __init__(self, name, title, kind, path, expect="2xx", upstream=True,
                 plugin=None, filters=None, counters=None, keys=False, local=False,
                 probe=None):
        self.name = name
        self.title = title
        self.kind = kind
        self.path = path
        self.expect = expect
        self.upstream = upstream
        self.plugin = plugin
        self.filters = filters or []
        self.counters = counters or {}
        self.keys = keys
        self.local = local
        # The probe filter's configuration ({"call": ..., "times": N}), for
        # the price of one host call.
        self.probe = probe


def rule(name, limit, period, **extra):
    return dict({"name": name, "key": ["header:x-api-key"], "limit": limit,
                 "period": period}, **extra)


def breaker(name, open_for):
    return {
        "name": name,
        "failure": {"statuses": ["5xx"]},
        "trip": {"consecutive_failures": 5},
        "open_for": open_for,
        "max_open_for": open_for,
    }


NATIVE_RATELIMIT = {
    "name": "envoy.filters.http.local_ratelimit",
    "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit",
        "stat_prefix": "native_ratelimit",
        "token_bucket": {
            "max_tokens": UNREACHABLE,
            "tokens_per_fill": UNREACHABLE,
            "fill_interval": "1s",
        },
        "filter_enabled": {
            "runtime_key": "bench_native_ratelimit_enabled",
            "default_value": {"numerator": 100, "denominator": "HUNDRED"},
        },
        "filter_enforced": {
            "runtime_key": "bench_native_ratelimit_enforced",
            "default_value": {"numerator": 100, "denominator": "HUNDRED"},
        },
    },
}

VARIANTS = [
    Variant("baseline", "plain proxying, no filter", "baseline", "/plain/baseline"),
    Variant("native_ratelimit", "Envoy's local_ratelimit, bucket never empties", "control",
            "/plain/native", filters=[NATIVE_RATELIMIT],
            counters={"native_ratelimit.http_local_rate_limit.ok": 1}),
    Variant("wasm_noop", "do-nothing proxy-wasm filter (V8)", "control", "/plain/noop",
            filters=["noop"]),
    Variant("direct_response", "Envoy answers itself (direct_response)", "control",
            "/plain/direct", upstream=False, local=True),
    Variant("wasm_noop_direct", "do-nothing wasm filter, then direct_response", "control",
            "/plain/noop-direct", filters=["noop"], upstream=False, local=True),
    Variant("ratelimit_allow", "floodgate: one rate limit, allowed", "floodgate",
            "/plain/allow",
            plugin={"rate_limits": [rule("allow", UNREACHABLE, "1s")]},
            counters={"wasmcustom.floodgate.ratelimit.rule.allow.allowed": 1}),
    Variant("ratelimit_refuse", "floodgate: the same rate limit refusing (429)", "floodgate",
            "/plain/refuse", expect="4xx", upstream=False, local=True,
            plugin={"rate_limits": [rule("refuse", 1, "1h")]},
            counters={"wasmcustom.floodgate.ratelimit.rule.refuse.limited": 1}),
    Variant("breaker_closed", "floodgate: one breaker, closed", "floodgate",
            "/plain/closed",
            plugin={"circuit_breakers": [breaker("closed", "10s")]}),
    Variant("breaker_open", "floodgate: one breaker, open (local answer)", "floodgate",
            "/broken/open", expect="5xx", upstream=False, local=True,
            plugin={"circuit_breakers": [breaker("open", "1h")]},
            counters={"wasmcustom.floodgate.breaker.open.rejected": 1}),
    Variant("cache_miss", "floodgate: cache, uncacheable answers (miss)", "floodgate",
            "/plain/miss",
            plugin={"cache": {"name": "miss"}},
            counters={"wasmcustom.floodgate.cache.miss.misses": 1}),
    Variant("cache_hit", "floodgate: cache, fresh hit", "floodgate",
            "/cacheable/hit", upstream=False, local=True,
            plugin={"cache": {"name": "hit"}},
            counters={"wasmcustom.floodgate.cache.hit.hits": 1}),
    Variant("all_features", "floodgate: rate limit + breaker + cache, all passing", "floodgate",
            "/plain/all",
            plugin={
                "rate_limits": [rule("all", UNREACHABLE, "1s")],
                "circuit_breakers": [breaker("all", "10s")],
                "cache": {"name": "all"},
            },
            counters={"wasmcustom.floodgate.ratelimit.rule.all.allowed": 1,
                      "wasmcustom.floodgate.cache.all.misses": 1}),
    Variant("ratelimit_key_flood", "floodgate: rate limit, a new x-api-key per request",
            "floodgate", "/plain/flood", keys=True,
            plugin={"rate_limits": [rule("flood", 100, "1s", burst=200)]},
            counters={"wasmcustom.floodgate.ratelimit.rule.flood.allowed": 1}),
]

# The host calls priced with `--prices`: the probe filter's name for each,
# and what it calls. Each call gets two listeners: one making it once per
# request (what a request pays for the first call of a kind: Envoy's code
# behind it is cold again by the next request) and one making it
# PROBE_TIMES times (what each further call of the kind adds).
PROBE_TIMES = 10
PROBE_CALLS = [
    ("clock", "get_current_time"),
    ("header", "get_map_value_bytes: the request header x-api-key"),
    ("header_map", "get_map_bytes: the whole request header map"),
    ("property", "get_property: source.address"),
    ("shared_get", "get_shared_data: one 16-byte value"),
    ("shared_get_set", "get_shared_data, then set_shared_data with its CAS (one pair)"),
    ("counter", "increment_metric: one counter"),
    ("set_response_header", "set_map_value: a new response header (on the response)"),
]

PRICE_VARIANTS = [
    Variant(f"price_{call}{suffix}", f"probe filter: {what}, {times} time(s) a request", "probe",
            f"/plain/price-{call}{suffix}", probe={"call": call, "times": times},
            counters=({"wasmcustom.probe.calls": times} if call == "counter" else None))
    for call, what in PROBE_CALLS
    for suffix, times in (("", 1), (f"_x{PROBE_TIMES}", PROBE_TIMES))
]

ALLOW_PATHS = ["ratelimit_allow", "breaker_closed", "cache_miss", "all_features",
               "ratelimit_key_flood"]
LOCAL_PATHS = ["ratelimit_refuse", "cache_hit"]


class BenchError(Exception):
    """A failure of the bench itself (not a slow variant)."""


class EnvoyExited(BenchError):
    """Envoy stopped while starting; `log` is its whole log."""

    def __init__(self, message, log):
        super().__init__(message)
        self.log = log


# ---------------------------------------------------------------- processes

class Processes:
    """The processes the bench started, stopped by pid at the end."""

    def __init__(self):
        self.running = []

    def start(self, argv, log_path, cpus=None):
        if cpus is not None and shutil.which("taskset"):
            argv = ["taskset", "-c", cpus] + argv
        log = open(log_path, "wb")
        # A session of its own: Ctrl-C reaches the bench only, which then
        # stops its children itself.
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        self.running.append(proc)
        return proc

    def stop_all(self):
        for proc in reversed(self.running):
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGTERM)
        deadline = time.time() + 10
        for proc in reversed(self.running):
            try:
                proc.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
        self.running = []


def tail(path, lines=40):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


# ---------------------------------------------------------------- Envoy

def hcm(stat_prefix, routes, filters):
    return {
        "name": "envoy.filters.network.http_connection_manager",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network."
                     "http_connection_manager.v3.HttpConnectionManager",
            "stat_prefix": stat_prefix,
            "generate_request_id": False,
            "route_config": {
                "name": stat_prefix,
                "virtual_hosts": [{"name": stat_prefix, "domains": ["*"], "routes": routes}],
            },
            "http_filters": filters + [{
                "name": "envoy.filters.http.router",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router",
                    "dynamic_stats": False,
                },
            }],
        },
    }


def listener(name, stat_prefix, routes, filters):
    return {
        "name": name,
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
        "filter_chains": [{"filters": [hcm(stat_prefix, routes, filters)]}],
    }


def bootstrap(listeners, clusters=()):
    return {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "static_resources": {"listeners": listeners, "clusters": list(clusters)},
    }


def answer(status, cache_control):
    return {
        "match": {"prefix": "/"},
        "direct_response": {"status": status, "body": {"inline_string": BODY}},
        "response_headers_to_add": [
            {"header": {"key": "content-type", "value": "application/json"}},
            {"header": {"key": "cache-control", "value": cache_control}},
        ],
    }


def upstream_config():
    """The upstream: 503 under /broken/, cacheable under /cacheable/, else uncacheable 200."""
    def prefixed(prefix, route):
        return dict(route, match={"prefix": prefix})

    routes = [
        prefixed("/broken/", answer(503, "no-store")),
        prefixed("/cacheable/", answer(200, "max-age=86400")),
        answer(200, "no-store"),
    ]
    return bootstrap([listener("upstream", "upstream", routes, [])])


def wasm_filter(name, vm_id, wasm_path, configuration):
    return {
        "name": "envoy.filters.http.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": name,
                "root_id": vm_id,
                "fail_open": False,
                "configuration": {
                    "@type": "type.googleapis.com/google.protobuf.StringValue",
                    "value": configuration,
                },
                "vm_config": {
                    "vm_id": vm_id,
                    "runtime": "envoy.wasm.runtime.v8",
                    "code": {"local": {"filename": wasm_path}},
                },
            },
        },
    }


def proxy_config(variants, upstream_port, wasm, noop_wasm, probe_wasm=None):
    """The proxy: one listener, HTTP connection manager and cluster per variant."""
    listeners, clusters = [], []
    for v in variants:
        filters = []
        for f in v.filters:
            filters.append(wasm_filter(v.name, "noop", noop_wasm, "{}") if f == "noop" else f)
        if v.probe is not None:
            filters.append(wasm_filter(v.name, "probe", probe_wasm, json.dumps(v.probe)))
        if v.plugin is not None:
            filters.append(wasm_filter(v.name, "floodgate", wasm, json.dumps(v.plugin)))
        if not v.upstream and v.plugin is None:
            routes = [answer(200, "no-store")]
        else:
            routes = [{"match": {"prefix": "/"}, "route": {"cluster": v.name, "timeout": "5s"}}]
            clusters.append({
                "name": v.name,
                "type": "STATIC",
                "connect_timeout": "1s",
                "circuit_breakers": NO_LIMITS,
                "load_assignment": {
                    "cluster_name": v.name,
                    "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {
                        "socket_address": {"address": "127.0.0.1", "port_value": upstream_port},
                    }}}]}],
                },
            })
        listeners.append(listener(v.name, v.name, routes, filters))
    return bootstrap(listeners, clusters)


class Envoy:
    """A running Envoy: its pid, admin port and listener ports by name."""

    def __init__(self, procs, envoy_bin, name, config, workdir, cpus):
        self.name = name
        config_path = os.path.join(workdir, f"{name}.json")
        with open(config_path, "w") as f:
            json.dump(config, f, indent=1)
        admin_path = os.path.join(workdir, f"{name}.admin")
        self.log = os.path.join(workdir, f"{name}.log")
        argv = [envoy_bin, "-c", config_path, "--concurrency", "1",
                "--disable-hot-restart", "--admin-address-path", admin_path,
                "--log-level", "warn"]
        self.proc = procs.start(argv, self.log, cpus)
        self.pid = self.proc.pid
        self.admin = self._wait_ready(admin_path)
        self.ports = self._listener_ports()

    def _wait_ready(self, admin_path):
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                with open(self.log, errors="replace") as f:
                    whole = f.read()
                raise EnvoyExited(f"{self.name} Envoy exited with {self.proc.returncode}:\n"
                                  + tail(self.log), whole)
            try:
                with open(admin_path) as f:
                    address = f.read().strip()
                if address:
                    port = int(address.rsplit(":", 1)[1])
                    if http_get(port, "/ready")[0] == 200:
                        return port
            except (OSError, ValueError):
                pass
            time.sleep(0.1)
        raise BenchError(f"{self.name} Envoy not ready after 60 s:\n" + tail(self.log))

    def _listener_ports(self):
        status, body = http_get(self.admin, "/listeners?format=json")
        ports = {}
        for entry in json.loads(body)["listener_statuses"]:
            ports[entry["name"]] = entry["local_address"]["socket_address"]["port_value"]
        return ports

    def stats(self):
        status, body = http_get(self.admin, "/stats?usedonly")
        values = {}
        for line in body.decode().splitlines():
            name, sep, value = line.partition(": ")
            if sep and value.strip().isdigit():
                values[name] = int(value)
        return values

    def memory(self):
        status, body = http_get(self.admin, "/memory")
        raw = json.loads(body)
        return {key: int(raw[key]) for key in ("allocated", "heap_size") if key in raw}

    def cpu_seconds(self):
        """utime + stime of the whole process, from /proc/<pid>/stat."""
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        # Fields 14 and 15 of the stat line; the split drops the first two.
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_bytes(self):
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0


def http_get(port, path, headers=None):
    status, _, body = http_get_headers(port, path, headers)
    return status, body


def http_get_headers(port, path, headers=None):
    """Status, response headers and body of one GET."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


# ---------------------------------------------------------------- wrk

REPORTER = r"""
-- Prints one JSON line when the run ends, for bench.py.
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'bench-result {"requests":%d,"duration_us":%d,"connect_errors":%d,' ..
    '"read_errors":%d,"write_errors":%d,"status_errors":%d,"timeouts":%d,' ..
    '"p50_us":%.1f,"p90_us":%.1f,"p99_us":%.1f,"max_us":%.1f}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""

KEYS = r"""
-- A new x-api-key on every request: <prefix>-<counter>, the prefix given per run.
local prefix, counter = "k", 0
function init(args)
  prefix = args[1] or prefix
end
function request()
  counter = counter + 1
  return wrk.format(nil, nil, {["x-api-key"] = prefix .. "-" .. counter})
end
"""


class Wrk:
    def __init__(self, procs, workdir, cpus, connections):
        self.procs = procs
        self.cpus = cpus
        self.connections = connections
        self.workdir = workdir
        self.static_script = os.path.join(workdir, "report.lua")
        self.keys_script = os.path.join(workdir, "keys.lua")
        with open(self.static_script, "w") as f:
            f.write(REPORTER)
        with open(self.keys_script, "w") as f:
            f.write(KEYS + REPORTER)
        self.runs = 0

    def run(self, port, path, seconds, keys=False):
        self.runs += 1
        script = self.keys_script if keys else self.static_script
        argv = ["wrk", "-t1", f"-c{self.connections}", f"-d{seconds}s", "--timeout", "5s",
                "-H", "x-api-key: bench", "-s", script, f"http://127.0.0.1:{port}{path}"]
        if keys:
            argv += ["--", f"r{self.runs}-{os.getpid()}"]
        log = os.path.join(self.workdir, "wrk.log")
        proc = self.procs.start(argv, log, self.cpus)
        proc.wait(timeout=seconds + 30)
        self.procs.running.remove(proc)
        with open(log) as f:
            output = f.read()
        match = re.search(r"^bench-result (\{.*\})$", output, re.M)
        if proc.returncode != 0 or not match:
            raise BenchError(f"wrk failed ({proc.returncode}):\n{output}")
        result = json.loads(match.group(1))
        result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
        return result


# ---------------------------------------------------------------- measuring

def cpu_times():
    """The machine's CPU time counters (first line of /proc/stat)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal (guest time is inside user)
    return fields[:8]


def steal_fraction(before, after):
    delta = [b - a for a, b in zip(before, after)]
    total = sum(delta)
    return delta[7] / total if total else 0.0


def check(variant, result, before, after):
    """Why a run is void, or None when it took the path it measures."""
    def grew(name):
        return after.get(name, 0) - before.get(name, 0)

    n = result["requests"]
    slack = 2 * result.get("connections", 32) + 2
    problems = []
    if n == 0:
        return "no request completed"
    errors = sum(result[k] for k in ("connect_errors", "read_errors", "write_errors", "timeouts"))
    if errors:
        problems.append(f"{errors} socket errors or timeouts")
    non2xx = result["status_errors"]
    if variant.expect == "2xx" and non2xx:
        problems.append(f"{non2xx} answers were not 2xx")
    if variant.expect != "2xx" and non2xx < n:
        problems.append(f"only {non2xx} of {n} answers were {variant.expect}")
    prefix = f"http.{variant.name}.downstream_rq_"
    classes = {c: grew(prefix + c) for c in ("2xx", "4xx", "5xx")}
    if classes[variant.expect] < n:
        problems.append(f"Envoy counted {classes[variant.expect]} {variant.expect} of {n}: "
                        f"{classes}")
    if f"cluster.{variant.name}.upstream_rq_total" in after or variant.upstream:
        upstream = grew(f"cluster.{variant.name}.upstream_rq_total")
        if variant.upstream and not (n <= upstream <= n + slack):
            problems.append(f"{upstream} upstream requests for {n} requests")
        if not variant.upstream and upstream > 0:
            problems.append(f"{upstream} requests reached the upstream")
    for name, per_request in variant.counters.items():
        if name in after and grew(name) < per_request * n:
            problems.append(f"{name} grew by {grew(name)} for {n} requests")
    return "; ".join(problems) or None


def measure(proxy, wrk, variant, seconds):
    port = proxy.ports[variant.name]
    stats_before = proxy.stats()
    steal_before = cpu_times()
    cpu_before = proxy.cpu_seconds()
    result = wrk.run(port, variant.path, seconds, keys=variant.keys)
    cpu_after = proxy.cpu_seconds()
    steal_after = cpu_times()
    stats_after = proxy.stats()
    result["connections"] = wrk.connections
    result["cpu_us_per_request"] = (cpu_after - cpu_before) * 1e6 / max(1, result["requests"])
    result["steal"] = steal_fraction(steal_before, steal_after)
    result["void"] = check(variant, result, stats_before, stats_after)
    missing = [n for n in variant.counters if n not in stats_after]
    if missing:
        result["missing_counters"] = missing
    return result


def prepare(proxy, variants):
    """Trip the open breaker and fill the cache before anything is measured."""
    names = {v.name for v in variants}
    headers = {"x-api-key": "bench"}
    if "breaker_open" in names:
        port = proxy.ports["breaker_open"]
        for _ in range(20):
            http_get(port, "/broken/open", headers)
        before = proxy.stats().get("cluster.breaker_open.upstream_rq_total", 0)
        for _ in range(5):
            http_get(port, "/broken/open", headers)
        if proxy.stats().get("cluster.breaker_open.upstream_rq_total", 0) != before:
            raise BenchError("the breaker did not open after 20 upstream 503s")
    if "cache_hit" in names:
        for _ in range(3):
            http_get(proxy.ports["cache_hit"], "/cacheable/hit", headers)
    if "ratelimit_refuse" in names:
        for _ in range(3):
            http_get(proxy.ports["ratelimit_refuse"], "/plain/refuse", headers)
    # Each probe once: it answers 200 only when its calls succeeded, and the
    # response headers it adds must all arrive.
    for v in variants:
        if v.probe is None:
            continue
        status, got, body = http_get_headers(proxy.ports[v.name], v.path, headers)
        if status != 200:
            raise BenchError(f"{v.name} answered {status}: {body[:200]!r}")
        if v.probe["call"] == "set_response_header":
            lacking = [f"x-probe-{i}" for i in range(v.probe["times"])
                       if got.get(f"x-probe-{i}") is None]
            if lacking:
                raise BenchError(f"{v.name}: response headers missing: {', '.join(lacking)}")


def flood_memory(proxy, wrk, variant, total_keys, log):
    """Envoy's memory before and after `total_keys` distinct keys (and at a third of them)."""
    port = proxy.ports[variant.name]
    points = [{"keys": 0, **proxy.memory(), "rss": proxy.rss_bytes()}]
    sent, rps = 0, None
    for target in (total_keys // 3, total_keys):
        while sent < target:
            seconds = 2 if rps is None else max(1, min(10, round((target - sent) / rps + 0.5)))
            result = wrk.run(port, variant.path, seconds, keys=True)
            if result["status_errors"] or result["requests"] == 0:
                raise BenchError(f"key flood: {result}")
            sent += result["requests"]
            rps = result["rps"]
        points.append({"keys": sent, **proxy.memory(), "rss": proxy.rss_bytes()})
        log(f"  {sent} distinct keys: allocated {points[-1].get('allocated', 0) / 2**20:.1f} MiB, "
            f"heap {points[-1].get('heap_size', 0) / 2**20:.1f} MiB, "
            f"RSS {points[-1]['rss'] / 2**20:.1f} MiB")
    return points


# ---------------------------------------------------------------- report

# floodgate's refusal of a section it was built without.
LACKING = re.compile(r"(rate_limits|circuit_breakers|cache): not supported by this build")


def start_proxy(procs, args, variants, upstream, workdir, cpus, log):
    """Starts the proxy Envoy; variants whose section this build of floodgate
    refuses are left out (and listed) rather than failing the whole bench."""
    skipped = {}
    while True:
        config = proxy_config(variants, upstream.ports["upstream"],
                              os.path.abspath(args.wasm), os.path.abspath(args.noop_wasm),
                              os.path.abspath(args.probe_wasm))
        try:
            return Envoy(procs, args.envoy, "proxy", config, workdir, cpus), variants, skipped
        except EnvoyExited as error:
            lacking = set(LACKING.findall(error.log))
            left_out = [v for v in variants if v.plugin and lacking & set(v.plugin)]
            if not left_out:
                raise
            for v in left_out:
                reason = f"this build of floodgate refuses `{'`, `'.join(sorted(lacking & set(v.plugin)))}`"
                skipped[v.name] = reason
                log(f"SKIPPED {v.name}: {reason}")
            variants = [v for v in variants if v not in left_out]


def ratios(runs, variants, baseline="baseline"):
    """Per variant and round, each metric divided by the mean of the baseline runs on either side."""
    metrics = {"cpu": "cpu_us_per_request", "rps": "rps", "p50": "p50_us", "p99": "p99_us"}
    per_round = {v.name: [] for v in variants}
    for i, run in enumerate(runs):
        if run["variant"] == baseline or run["void"]:
            continue
        before, after = runs[i - 1], runs[i + 1]
        if before["variant"] != baseline or after["variant"] != baseline:
            raise BenchError("run order broken: a variant run without baseline neighbours")
        r = {}
        for key, field in metrics.items():
            mean = (before[field] + after[field]) / 2
            r[key] = run[field] / mean if mean else float("nan")
        r["round"] = run["round"]
        per_round[run["variant"]].append(r)
    # The baseline against its own neighbours: the noise floor of the method.
    for i, run in enumerate(runs):
        if run["variant"] != baseline or i < 2 or i + 2 >= len(runs):
            continue
        before, after = runs[i - 2], runs[i + 2]
        r = {"round": run["round"]}
        for key, field in metrics.items():
            mean = (before[field] + after[field]) / 2
            r[key] = run[field] / mean if mean else float("nan")
        per_round[baseline].append(r)
    return per_round


def summarize(runs, variants, per_round):
    by_round = {}
    for name, rows in per_round.items():
        for r in rows:
            by_round.setdefault(name, {})[r["round"]] = r

    def med(values):
        values = [x for x in values if x == x]
        return statistics.median(values) if values else None

    def per_round_versus(name, control, key):
        mine, theirs = by_round.get(name, {}), by_round.get(control, {})
        return [mine[k][key] / theirs[k][key] for k in mine if k in theirs]

    def versus(name, control, key):
        return med(per_round_versus(name, control, key))

    def spread(values):
        return [min(values), max(values)] if values else None

    out = {}
    for v in variants:
        rows = per_round[v.name]
        mine = [r for r in runs if r["variant"] == v.name and not r["void"]]
        entry = {
            "title": v.title,
            "kind": v.kind,
            "cpu_ratio": med([r["cpu"] for r in rows]),
            "rps_ratio": med([r["rps"] for r in rows]),
            "p50_ratio": med([r["p50"] for r in rows]),
            "p99_ratio": med([r["p99"] for r in rows]),
            # A floodgate path against the do-nothing wasm filter on the same
            # path: proxying, or answering locally.
            "vs_wasm_floor_cpu": (versus(v.name, "wasm_noop_direct" if v.local else "wasm_noop",
                                         "cpu") if v.kind == "floodgate" else None),
            "vs_direct_rps": versus(v.name, "direct_response", "rps") if v.local else None,
            "vs_direct_cpu": versus(v.name, "direct_response", "cpu") if v.local else None,
            # The lowest and highest round, to judge the median by.
            "vs_wasm_floor_cpu_range": (spread(per_round_versus(
                v.name, "wasm_noop_direct" if v.local else "wasm_noop", "cpu"))
                if v.kind == "floodgate" else None),
            "vs_direct_rps_range": (spread(per_round_versus(v.name, "direct_response", "rps"))
                                    if v.local else None),
            "cpu_ratio_range": spread([r["cpu"] for r in rows]),
            "cpu_us_per_request": med([r["cpu_us_per_request"] for r in mine]),
            "rps": med([r["rps"] for r in mine]),
            "p50_us": med([r["p50_us"] for r in mine]),
            "p99_us": med([r["p99_us"] for r in mine]),
            "runs": len(mine),
            "void_runs": len([r for r in runs if r["variant"] == v.name and r["void"]]),
        }
        if v.name == "baseline":
            entry.update(cpu_ratio=1.0, rps_ratio=1.0, p50_ratio=1.0, p99_ratio=1.0)
            entry["noise"] = {k: med([r[k] for r in rows]) for k in ("cpu", "rps", "p50", "p99")}
            entry["noise_spread"] = {
                k: [min(r[k] for r in rows), max(r[k] for r in rows)] if rows else None
                for k in ("cpu", "rps", "p50", "p99")}
        out[v.name] = entry
    return out


def host_call_prices(runs, variants, control="wasm_noop", baseline="baseline"):
    """Per probed call, one value per round (void runs left out): `first`,
    the CPU µs/req of the probe making it once minus the control's in the
    same round; `more`, what each further call adds: (CPU µs/req of the
    probe making it PROBE_TIMES times − the one making it once) /
    (PROBE_TIMES − 1). Each run's CPU is first taken relative to the
    baseline runs on either side and scaled back by the median baseline, so
    the machine's drift between two runs of a round cancels out as it does
    in the ratios."""
    base = statistics.median(r["cpu_us_per_request"] for r in runs
                             if r["variant"] == baseline and not r["void"])
    cpu = {}
    for i, run in enumerate(runs):
        if run["variant"] == baseline or run["void"] or i == 0 or i + 1 >= len(runs):
            continue
        mean = (runs[i - 1]["cpu_us_per_request"] + runs[i + 1]["cpu_us_per_request"]) / 2
        if mean:
            cpu[(run["variant"], run["round"])] = run["cpu_us_per_request"] / mean * base
    out = {}
    for v in variants:
        if v.probe is None or v.probe["times"] != 1:
            continue
        call = v.probe["call"]
        rounds = sorted({r for (name, r) in cpu if name == v.name})
        first, more = [], []
        for r in rounds:
            once = cpu[(v.name, r)]
            if (control, r) in cpu:
                first.append(once - cpu[(control, r)])
            many = cpu.get((f"{v.name}_x{PROBE_TIMES}", r))
            if many is not None:
                more.append((many - once) / (PROBE_TIMES - 1))
        out[call] = {"first": first, "more": more}
    return out


def fmt(x, digits=2):
    return "—" if x is None else f"{x:.{digits}f}"


def markdown(report):
    lines = [
        "| variant | CPU/req | rps | p50 | p99 | CPU/req vs no-op wasm | rps vs direct_response "
        "| CPU µs/req | rps | p50 ms | p99 ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, v in report["variants"].items():
        if v["kind"] == "probe":
            continue
        lines.append(
            f"| `{name}` | {fmt(v['cpu_ratio'])} | {fmt(v['rps_ratio'])} | {fmt(v['p50_ratio'])} "
            f"| {fmt(v['p99_ratio'])} | {fmt(v['vs_wasm_floor_cpu'])} | {fmt(v['vs_direct_rps'])} "
            f"| {fmt(v['cpu_us_per_request'], 1)} | {fmt(v['rps'], 0)} "
            f"| {fmt(v['p50_us'] and v['p50_us'] / 1000, 3)} "
            f"| {fmt(v['p99_us'] and v['p99_us'] / 1000, 3)} |")
    return "\n".join(lines)


def targets(report):
    """Where each performance target stands (reported, never enforced)."""
    v = report["variants"]
    out = []
    for name in ALLOW_PATHS:
        x = v.get(name, {}).get("vs_wasm_floor_cpu")
        if x is not None:
            low, high = v[name]["vs_wasm_floor_cpu_range"]
            out.append((f"`{name}` CPU/req ≤ 1.10× the no-op wasm filter",
                        f"{x:.2f}× (rounds {low:.2f}–{high:.2f})", x <= 1.10))
    for name in LOCAL_PATHS:
        x = v.get(name, {}).get("vs_direct_rps")
        if x is not None:
            cpu = v[name].get("vs_direct_cpu")
            low, high = v[name]["vs_direct_rps_range"]
            out.append((f"`{name}` rps ≥ 0.75× direct_response",
                        f"{x:.2f}× (rounds {low:.2f}–{high:.2f}; CPU/req {fmt(cpu)}×)",
                        x >= 0.75))
    memory = report.get("memory")
    if memory and len(memory) >= 3:
        # Flat means no state per key: a map entry per key costs tens of
        # bytes at least, Envoy's own churn stays well under 8 bytes a key.
        a, b = memory[1], memory[-1]
        growth = b.get("allocated", 0) - a.get("allocated", 0)
        per_key = growth / max(1, b["keys"] - a["keys"])
        out.append((f"Envoy memory flat from {a['keys']} to {b['keys']} distinct keys "
                    f"(allocated grows < 8 bytes a key)",
                    f"{growth / 2**20:+.2f} MiB allocated ({per_key:+.1f} bytes a key), "
                    f"{(b['rss'] - a['rss']) / 2**20:+.2f} MiB RSS", per_key < 8))
    size = report.get("wasm_bytes")
    if size:
        out.append(("`floodgate.wasm` ≤ 400 KB", f"{size / 1000:.0f} KB", size <= 400_000))
    return out


def write_report(path_dir, report, args_text):
    table = markdown(report)
    target_lines = ["| target | measured | met |", "| --- | --- | --- |"]
    for what, measured, met in targets(report):
        target_lines.append(f"| {what} | {measured} | {'yes' if met else 'no'} |")
    memory_lines = ["| distinct keys | allocated MiB | heap MiB | RSS MiB |",
                    "| ---: | ---: | ---: | ---: |"]
    for p in report.get("memory") or []:
        memory_lines.append(f"| {p['keys']} | {p.get('allocated', 0) / 2**20:.1f} "
                            f"| {p.get('heap_size', 0) / 2**20:.1f} | {p['rss'] / 2**20:.1f} |")
    price_lines = []
    if report.get("host_call_us"):
        calls = dict(PROBE_CALLS)
        price_lines = [
            "## What one host call costs",
            "",
            "Per call: one listener with a probe filter making it once per request, one making it "
            f"{PROBE_TIMES} times. First call: CPU µs/req of the once-probe − `wasm_noop`'s in "
            f"the same round. Each further call: (the {PROBE_TIMES}-times probe − the "
            f"once-probe) / {PROBE_TIMES - 1}. Each run's CPU is taken relative to the baseline "
            "runs on either side (times the median baseline), like the ratios. Median over "
            "rounds, lowest and highest round.",
            "",
            "| call | host call | first call µs | rounds | each further call µs | rounds |",
            "| --- | --- | ---: | --- | ---: | --- |",
        ]
        for call, price in report["host_call_us"].items():
            span = report["host_call_us_range"][call]

            def cell(kind):
                if price.get(kind) is None:
                    return "—", "—"
                low, high = span[kind]
                return f"{price[kind]:.2f}", f"{low:.2f}–{high:.2f}"

            first, first_span = cell("first")
            more, more_span = cell("more")
            price_lines.append(f"| `{call}` | {calls.get(call, '')} | {first} | {first_span} "
                               f"| {more} | {more_span} |")
        price_lines.append("")
    base = report["variants"].get("baseline", {})
    text = "\n".join([
        "# floodgate bench",
        "",
        f"Run: {args_text}; floodgate at {report['commit']}; {report['machine']}. Rounds: {report['rounds']}; steal median "
        f"{report['steal_median'] * 100:.2f}%; load average {report['loadavg_start']} at the start, "
        f"{report['loadavg_end']} at the end.",
        "",
        "Ratios: median over rounds of each run divided by the mean of the baseline runs on "
        "either side (CPU per request, requests per second, p50, p99). The baseline row's "
        "absolute figures are plain proxying; its ratios are 1 by definition "
        + (f"(its own runs against their neighbours, the noise floor: CPU "
           f"{fmt(base.get('noise', {}).get('cpu'))}, rps {fmt(base.get('noise', {}).get('rps'))})."
           if base.get("noise") else "."),
        "",
        table,
        "",
        "Targets (reported, not enforced):",
        "",
        *target_lines,
        "",
        *price_lines,
        *([f"Skipped: {', '.join(f'`{k}` ({v})' for k, v in report['skipped'].items())}.", ""]
          if report.get("skipped") else []),
        *(["Envoy memory under a flood of distinct `x-api-key` values (`ratelimit_key_flood`):",
            "", *memory_lines, ""] if report.get("memory") else []),
        f"`floodgate.wasm`: {report['wasm_bytes']} bytes; no-op filter: "
        f"{report['noop_wasm_bytes']} bytes.",
        "",
    ])
    os.makedirs(path_dir, exist_ok=True)
    with open(os.path.join(path_dir, "report.md"), "w") as f:
        f.write(text)
    with open(os.path.join(path_dir, "report.json"), "w") as f:
        json.dump(report, f, indent=2)
    return text


# ---------------------------------------------------------------- main

def commit():
    """The checkout's commit, for the report (floodgate is built from it by make bench)."""
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True,
                             text=True, timeout=10, cwd=HERE)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def machine(envoy_bin):
    """CPU model, core count and Envoy version, for the report."""
    model = "unknown CPU"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    try:
        out = subprocess.run([envoy_bin, "--version"], capture_output=True, text=True, timeout=30)
        found = re.search(r"/(\d+\.\d+\.\d+)/", out.stdout + out.stderr)
        version = found.group(1) if found else "unknown"
    except (OSError, subprocess.SubprocessError):
        version = "unknown"
    return f"{model}, {os.cpu_count()} CPUs, Envoy {version}"


def env_int(name, default):
    value = os.environ.get(name, "")
    return int(value) if value.strip() else default


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--envoy", default=os.environ.get("ENVOY", "envoy"))
    p.add_argument("--wasm", default="target/wasm32-wasip1/release/floodgate.wasm")
    p.add_argument("--noop-wasm", default="target/wasm32-wasip1/release/noop_filter.wasm")
    p.add_argument("--probe-wasm", default="target/wasm32-wasip1/release/probe_filter.wasm",
                   help="the probe filter, for --prices")
    p.add_argument("--rounds", type=int, default=env_int("ROUNDS", 10))
    p.add_argument("--run-seconds", type=int, default=env_int("RUN_SECONDS", 3))
    p.add_argument("--warmup-seconds", type=int, default=env_int("WARMUP_SECONDS", 2))
    p.add_argument("--connections", type=int, default=env_int("CONNECTIONS", 32))
    p.add_argument("--flood-keys", type=int, default=env_int("FLOOD_KEYS", 300_000),
                   help="distinct keys for the memory measurement (0 skips it)")
    p.add_argument("--variants", default=os.environ.get("VARIANTS", ""),
                   help="comma-separated subset of variants (the baseline is always run)")
    p.add_argument("--prices", action="store_true",
                   default=os.environ.get("PRICES", "").strip() not in ("", "0"),
                   help="also price each host call (the price_* variants, next to wasm_noop)")
    p.add_argument("--out", default="target/bench")
    p.add_argument("--label", default="",
                   help="what the .wasm was built from, for the report (default: this checkout)")
    return p.parse_args()


def pick_cpus():
    """(proxy core, core for the upstream and wrk) or (None, None) with one core."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None, None
    return str(cpus[-1]), str(cpus[0])


def main():
    args = parse_args()
    started = time.time()

    def log(message):
        print(f"[{time.time() - started:6.1f}s] {message}", flush=True)

    for tool in ("wrk", args.envoy):
        if not shutil.which(tool):
            raise BenchError(f"{tool} not found")
    # The main table's variants, or those named; the prices only when asked
    # for (--prices, or a price_* variant named), always with wasm_noop,
    # which they are measured against.
    catalog = VARIANTS + PRICE_VARIANTS
    wanted = {v.name for v in VARIANTS}
    if args.variants:
        wanted = {name.strip() for name in args.variants.split(",") if name.strip()} | {"baseline"}
        unknown = wanted - {v.name for v in catalog}
        if unknown:
            raise BenchError(f"unknown variants: {', '.join(sorted(unknown))}")
    if args.prices:
        wanted |= {v.name for v in PRICE_VARIANTS}
    prices = any(v.name in wanted for v in PRICE_VARIANTS)
    if prices:
        wanted.add("wasm_noop")
    variants = [v for v in catalog if v.name in wanted]
    for path in (args.wasm, args.noop_wasm) + ((args.probe_wasm,) if prices else ()):
        if not os.path.exists(path):
            raise BenchError(f"{path} not found: build it first (make bench does)")
    proxy_cpu, other_cpu = pick_cpus()
    if proxy_cpu is None:
        log("only one CPU: nothing pinned, figures include the upstream's and wrk's work")
    loadavg_start = open("/proc/loadavg").read().split()[:3]
    log(f"load average {' '.join(loadavg_start)}; proxy on CPU {proxy_cpu}, "
        f"upstream and wrk on CPU {other_cpu}")

    procs = Processes()
    workdir = tempfile.mkdtemp(prefix="floodgate-bench-")

    def stop(signum, frame):
        raise KeyboardInterrupt

    # Also SIGINT: a shell may start the bench with it ignored, and Ctrl-C
    # must still stop everything.
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, stop)
    try:
        upstream = Envoy(procs, args.envoy, "upstream", upstream_config(), workdir, other_cpu)
        proxy, variants, skipped = start_proxy(procs, args, variants, upstream, workdir,
                                               proxy_cpu, log)
        others = [v for v in variants if v.name != "baseline"]
        base = variants[0]
        log(f"upstream Envoy pid {upstream.pid}, proxy Envoy pid {proxy.pid}, "
            f"{len(variants)} listeners")
        wrk = Wrk(procs, workdir, other_cpu, args.connections)

        prepare(proxy, variants)
        flood = next((v for v in variants if v.keys), None)
        for v in variants:
            if v is flood and args.flood_keys:
                continue
            result = wrk.run(proxy.ports[v.name], v.path, args.warmup_seconds, keys=v.keys)
            log(f"warm-up {v.name}: {result['rps']:.0f} rps")

        memory = None
        if flood is not None and args.flood_keys:
            log(f"memory under {args.flood_keys} distinct keys on {flood.name}")
            memory = flood_memory(proxy, wrk, flood, args.flood_keys, log)

        runs = []

        def record(variant, round_no):
            result = measure(proxy, wrk, variant, args.run_seconds)
            result.update(variant=variant.name, round=round_no)
            runs.append(result)
            note = f"  VOID: {result['void']}" if result["void"] else ""
            log(f"round {round_no} {variant.name:20} {result['rps']:9.0f} rps "
                f"{result['cpu_us_per_request']:7.1f} µs CPU/req p50 {result['p50_us']:7.0f} µs "
                f"p99 {result['p99_us']:7.0f} µs steal {result['steal'] * 100:.1f}%{note}")

        for round_no in range(1, args.rounds + 1):
            # Rotate the order each round, so no variant always follows the same one.
            shift = (round_no - 1) % max(1, len(others))
            order = others[shift:] + others[:shift]
            if round_no == 1:
                record(base, round_no)
            for v in order:
                record(v, round_no)
                record(base, round_no)

        per_round = ratios(runs, variants)
        report = {
            "variants": summarize(runs, variants, per_round),
            "rounds": args.rounds,
            "steal_median": statistics.median(r["steal"] for r in runs),
            "run_seconds": args.run_seconds,
            "warmup_seconds": args.warmup_seconds,
            "connections": args.connections,
            "loadavg_start": " ".join(loadavg_start),
            "loadavg_end": " ".join(open("/proc/loadavg").read().split()[:3]),
            "memory": memory,
            "skipped": skipped,
            "commit": args.label or commit(),
            "machine": machine(args.envoy),
            "wasm_bytes": os.path.getsize(args.wasm),
            "noop_wasm_bytes": os.path.getsize(args.noop_wasm),
            "runs": runs,
        }
        if prices:
            per_call = host_call_prices(runs, variants)
            report["host_call_us"] = {
                c: {k: statistics.median(x) if x else None for k, x in kinds.items()}
                for c, kinds in per_call.items()}
            report["host_call_us_range"] = {
                c: {k: [min(x), max(x)] if x else None for k, x in kinds.items()}
                for c, kinds in per_call.items()}
            report["probe_wasm_bytes"] = os.path.getsize(args.probe_wasm)
        missing = sorted({n for r in runs for n in r.get("missing_counters", [])})
        if missing:
            log(f"counters not found (path checked through Envoy's stats only): {', '.join(missing)}")
            report["missing_counters"] = missing
        settings = (f"{args.rounds} round(s) of {args.run_seconds} s runs after {args.warmup_seconds} s "
                    f"warm-ups, wrk -t1 -c{args.connections}, Envoy --concurrency 1")
        text = write_report(args.out, report, settings)
        print()
        print(text)
        void = [r for r in runs if r["void"]]
        if void:
            log(f"{len(void)} void run(s): a variant did not take the path it measures")
            return 1
        return 0
    except BenchError as error:
        print(f"bench: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        return 130
    finally:
        procs.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

//! The Envoy bootstrap the harness runs: one listener with the floodgate
//! filter, admin on a kernel-chosen port, one cluster per upstream.

use std::fmt::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::Upstream;

/// The shipped `stats_tags` fragment, so tests check the file users copy.
const STATS_TAGS: &str = include_str!("../../envoy/stats_tags.yaml");

/// Name of the cluster that serves the default route's upstream.
const MAIN_CLUSTER: &str = "upstream";

/// One route of the test listener. Routes are matched in the order added,
/// before the default route (prefix `/`).
#[derive(Clone, Debug)]
pub struct Route {
    pub(crate) name: String,
    pub(crate) prefix: String,
    pub(crate) upstream: Option<SocketAddr>,
    pub(crate) timeout: Option<Duration>,
}

impl Route {
    /// A route named `name` (Envoy's `xds.route_name`) for paths starting with
    /// `prefix`. Without an upstream it answers `200` from Envoy itself
    /// (`direct_response`, body `direct`).
    pub fn new(name: &str, prefix: &str) -> Route {
        Route {
            name: name.to_owned(),
            prefix: prefix.to_owned(),
            upstream: None,
            timeout: None,
        }
    }

    /// Sends this route's requests to `upstream`.
    pub fn upstream(mut self, upstream: &Upstream) -> Route {
        self.upstream = Some(upstream.addr());
        self
    }

    /// Envoy's route timeout (default 15 s); `Duration::ZERO` disables it.
    pub fn timeout(mut self, timeout: Duration) -> Route {
        self.timeout = Some(timeout);
        self
    }
}

/// Everything the bootstrap depends on.
pub(crate) struct Bootstrap {
    pub(crate) plugin_config: String,
    pub(crate) wasm: PathBuf,
    pub(crate) routes: Vec<Route>,
    pub(crate) default_route: Route,
    pub(crate) upstream_http2: bool,
    pub(crate) use_remote_address: bool,
}

/// A YAML scalar for `text`: a JSON string is a valid YAML double-quoted string.
fn quote(text: &str) -> String {
    serde_json::to_string(text).expect("strings serialize")
}

impl Bootstrap {
    /// The bootstrap as YAML, with the listener in `static_resources`.
    pub(crate) fn to_yaml(&self) -> String {
        self.yaml(None)
    }

    /// The bootstrap as YAML with the listener read from the file `lds`
    /// (file-based LDS: Envoy watches it and applies what is moved over it).
    pub(crate) fn to_yaml_with_lds(&self, lds: &std::path::Path) -> String {
        self.yaml(Some(lds))
    }

    /// The LDS file: a discovery response holding the listener.
    pub(crate) fn lds_yaml(&self) -> String {
        let mut yaml = String::from(
            "resources:\n  - \"@type\": type.googleapis.com/envoy.config.listener.v3.Listener\n",
        );
        self.write_listener(&mut yaml, "    ");
        yaml
    }

    fn yaml(&self, lds: Option<&std::path::Path>) -> String {
        let mut yaml = String::new();
        yaml.push_str(STATS_TAGS);
        yaml.push_str("admin:\n  address: {socket_address: {address: 127.0.0.1, port_value: 0}}\n");
        if let Some(path) = lds {
            let path = quote(path.to_str().expect("LDS path is UTF-8"));
            writeln!(
                yaml,
                "node: {{id: floodgate-test, cluster: floodgate-test}}\n\
                 dynamic_resources:\n  lds_config:\n    resource_api_version: V3\n    \
                 path_config_source: {{path: {path}}}"
            )
            .unwrap();
        }
        yaml.push_str("static_resources:\n");
        if lds.is_none() {
            yaml.push_str("  listeners:\n");
            self.write_listener(&mut yaml, "  - ");
        }
        let clusters = self.clusters();
        if !clusters.is_empty() {
            yaml.push_str("  clusters:\n");
        }
        for (name, addr) in clusters {
            self.write_cluster(&mut yaml, &name, addr);
        }
        yaml
    }

    /// The listener, as a list item whose first line starts with `first`
    /// (`"  - "`, or four spaces when the item was opened already).
    fn write_listener(&self, yaml: &mut String, first: &str) {
        yaml.push_str(first);
        yaml.push_str(
            "name: floodgate\n    \
             address: {socket_address: {address: 127.0.0.1, port_value: 0}}\n    \
             filter_chains:\n    - filters:\n      \
             - name: envoy.filters.network.http_connection_manager\n        typed_config:\n          \
             \"@type\": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager\n          \
             stat_prefix: floodgate\n          codec_type: AUTO\n",
        );
        if self.use_remote_address {
            yaml.push_str("          use_remote_address: true\n");
        }
        yaml.push_str(
            "          route_config:\n            \
             name: local\n            virtual_hosts:\n            - name: all\n              \
             domains: [\"*\"]\n              routes:\n",
        );
        for route in self.routes.iter().chain([&self.default_route]) {
            self.write_route(yaml, route);
        }
        self.write_filters(yaml);
    }

    fn write_route(&self, yaml: &mut String, route: &Route) {
        let indent = "              ";
        writeln!(yaml, "{indent}- name: {}", quote(&route.name)).unwrap();
        writeln!(
            yaml,
            "{indent}  match: {{prefix: {}}}",
            quote(&route.prefix)
        )
        .unwrap();
        match route.upstream {
            Some(addr) => {
                let timeout = route.timeout.unwrap_or(Duration::from_secs(15));
                writeln!(
                    yaml,
                    "{indent}  route: {{cluster: {}, timeout: {}s}}",
                    self.cluster_name(addr),
                    timeout.as_secs_f64()
                )
                .unwrap();
            }
            None => writeln!(
                yaml,
                "{indent}  direct_response: {{status: 200, body: {{inline_string: direct}}}}"
            )
            .unwrap(),
        }
    }

    fn write_filters(&self, yaml: &mut String) {
        let wasm = self.wasm.to_str().expect("wasm path is UTF-8");
        write!(
            yaml,
            "          http_filters:
          - name: envoy.filters.http.wasm
            typed_config:
              \"@type\": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                name: floodgate
                root_id: floodgate
                fail_open: false
                configuration:
                  \"@type\": type.googleapis.com/google.protobuf.StringValue
                  value: {config}
                vm_config:
                  vm_id: floodgate
                  runtime: envoy.wasm.runtime.v8
                  code: {{local: {{filename: {wasm}}}}}
          - name: envoy.filters.http.router
            typed_config:
              \"@type\": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
",
            config = quote(&self.plugin_config),
            wasm = quote(wasm),
        )
        .unwrap();
    }

    fn write_cluster(&self, yaml: &mut String, name: &str, addr: SocketAddr) {
        write!(
            yaml,
            "  - name: {name}
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: {name}
      endpoints:
      - lb_endpoints:
        - endpoint:
            address: {{socket_address: {{address: {ip}, port_value: {port}}}}}
",
            ip = addr.ip(),
            port = addr.port(),
        )
        .unwrap();
        if self.upstream_http2 {
            yaml.push_str(
                "    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        \"@type\": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {http2_protocol_options: {}}
",
            );
        }
    }

    /// One cluster per distinct upstream address, the default route's first.
    fn clusters(&self) -> Vec<(String, SocketAddr)> {
        let mut addrs: Vec<SocketAddr> = Vec::new();
        let routes = [&self.default_route].into_iter().chain(&self.routes);
        for addr in routes.filter_map(|route| route.upstream) {
            if !addrs.contains(&addr) {
                addrs.push(addr);
            }
        }
        addrs
            .into_iter()
            .map(|addr| (self.cluster_name(addr), addr))
            .collect()
    }

    /// `upstream` for the default route's upstream, `upstream_<port>` for others.
    fn cluster_name(&self, addr: SocketAddr) -> String {
        if self.default_route.upstream == Some(addr) {
            MAIN_CLUSTER.to_owned()
        } else {
            format!("{MAIN_CLUSTER}_{}", addr.port())
        }
    }
}

//! Reading Envoy's admin interface: readiness, listeners, stats, memory.

use std::time::Duration;

use crate::client::{self, Request};

use super::Envoy;

/// Bound on one admin request; admin answers are local and small.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(5);

/// `GET` an admin `path` on `port`; the body if the status is 200.
pub(super) fn try_admin(port: u16, path: &str) -> Result<String, client::Error> {
    let request = Request::get(&format!("http://127.0.0.1:{port}{path}")).timeout(ADMIN_TIMEOUT);
    let response = client::try_send(&request)?;
    if response.status != 200 {
        return Err(format!("admin {path}: status {}", response.status).into());
    }
    Ok(String::from_utf8_lossy(&response.body).into_owned())
}

/// The port the listener `name` is bound to, per admin `/listeners`.
pub(super) fn listener_port(admin_port: u16, name: &str) -> Result<Option<u16>, client::Error> {
    let body = try_admin(admin_port, "/listeners?format=json")?;
    let json: serde_json::Value = serde_json::from_str(&body)?;
    let statuses = json["listener_statuses"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let port = statuses
        .iter()
        .find(|status| status["name"] == name)
        .and_then(|status| status["local_address"]["socket_address"]["port_value"].as_u64())
        .and_then(|port| u16::try_from(port).ok())
        .filter(|&port| port != 0);
    Ok(port)
}

impl Envoy {
    /// The body of admin `path` (e.g. `/clusters`); panics unless it answers 200.
    pub fn admin(&self, path: &str) -> String {
        try_admin(self.admin_port, path).unwrap_or_else(|e| panic!("admin {path}: {e}"))
    }

    /// The text of `/stats`.
    pub fn stats(&self) -> String {
        self.admin("/stats")
    }

    /// The text of `/stats/prometheus`.
    pub fn prometheus(&self) -> String {
        self.admin("/stats/prometheus")
    }

    /// The value of counter or gauge `name` as `/stats` shows it (e.g.
    /// `wasmcustom.floodgate.ratelimit.rule.a.allowed`); `None` if Envoy has no
    /// such stat or it is not a whole number (histograms).
    pub fn stat(&self, name: &str) -> Option<u64> {
        let stats = self.stats();
        stats.lines().find_map(|line| {
            let value = line.strip_prefix(name)?.strip_prefix(": ")?;
            value.trim().parse().ok()
        })
    }

    /// Bytes allocated by Envoy's heap, per admin `/memory`.
    pub fn memory(&self) -> u64 {
        let json: serde_json::Value =
            serde_json::from_str(&self.admin("/memory")).expect("/memory is JSON");
        json["allocated"]
            .as_str()
            .and_then(|text| text.parse().ok())
            .expect("/memory has `allocated`")
    }
}

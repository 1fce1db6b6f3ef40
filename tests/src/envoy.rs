//! A real Envoy running the floodgate plugin, stopped when dropped.

mod admin;
mod builder;
mod launch;

use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use tempfile::TempDir;

pub use builder::EnvoyBuilder;

use crate::process::Process;

/// How many lines of Envoy's log a failing test prints.
const LOG_TAIL_LINES: usize = 200;

/// A running Envoy. Dropping it stops the process (SIGTERM, then SIGKILL) and,
/// if the test is failing, prints the tail of Envoy's log to stderr.
pub struct Envoy {
    // Field order matters: the process stops (in `drop`) before its files go.
    process: Process,
    files: Files,
    admin_port: u16,
    listener_port: u16,
    builder: EnvoyBuilder,
}

impl Envoy {
    /// The port of the listener that runs the floodgate filter.
    pub fn listener_port(&self) -> u16 {
        self.listener_port
    }

    /// The port of Envoy's admin interface.
    pub fn admin_port(&self) -> u16 {
        self.admin_port
    }

    /// Envoy's pid.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// `http://127.0.0.1:<listener>` followed by `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.listener_port)
    }

    /// `http://127.0.0.1:<admin>` followed by `path`.
    pub fn admin_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.admin_port)
    }

    /// Whether the Envoy process is still running.
    pub fn is_running(&mut self) -> bool {
        self.process.exited().is_none()
    }

    /// Everything Envoy logged so far: its log file, then anything it wrote
    /// to stdout or stderr.
    pub fn log(&self) -> String {
        read_log(self.files.dir.path())
    }

    /// Waits until Envoy's log contains `needle`; false if `timeout` passes first.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while !self.log().contains(needle) {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        true
    }
}

impl Envoy {
    /// Changes the plugin configuration of an Envoy started with
    /// [`EnvoyBuilder::lds`]: writes the new listener next to the LDS file,
    /// renames it over the old one, and waits until Envoy applied it (the
    /// listener was modified and nothing is warming). The `vm_id` stays the
    /// same, so shared data survives.
    pub fn update_plugin_config(&mut self, json: &str) -> Result<(), StartError> {
        if !self.builder.lds {
            return Err(StartError(
                "update_plugin_config needs EnvoyBuilder::lds(true)".into(),
            ));
        }
        let stat = |envoy: &Envoy, name: &str| {
            envoy.stat(&format!("listener_manager.{name}")).unwrap_or(0)
        };
        let modified = stat(self, "listener_modified");
        self.builder.plugin_config = json.to_owned();
        let next = self.files.path("lds.next.yaml");
        fs::write(&next, self.builder.bootstrap().lds_yaml())
            .and_then(|()| fs::rename(&next, self.files.path("lds.yaml")))
            .map_err(|e| StartError(format!("write LDS file: {e}")))?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while stat(self, "listener_modified") <= modified
            || stat(self, "total_listeners_warming") > 0
        {
            if Instant::now() >= deadline {
                return Err(StartError(format!(
                    "listener update not applied\n{}",
                    log_tail(&self.log(), self.process.pid())
                )));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        if let Ok(Some(port)) = admin::listener_port(self.admin_port, "floodgate") {
            self.listener_port = port;
        }
        Ok(())
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        self.process.stop();
        if std::thread::panicking() {
            eprintln!("{}", log_tail(&self.log(), self.process.pid()));
        }
    }
}

/// The log file and the console output of an Envoy run in `dir`.
fn read_log(dir: &std::path::Path) -> String {
    let mut log = fs::read_to_string(dir.join("envoy.log")).unwrap_or_default();
    let console = fs::read_to_string(dir.join("console.log")).unwrap_or_default();
    if !console.trim().is_empty() {
        log.push_str("--- console ---\n");
        log.push_str(&console);
    }
    log
}

/// Why Envoy did not do what the test expected, with the tail of its log.
///
/// `Debug` prints the text as is, so `.unwrap()` on a failed start shows a
/// readable log rather than one long escaped string.
pub struct StartError(pub String);

impl std::fmt::Debug for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StartError {}

/// Whether `line` is part of the inventory Envoy logs at start-up (linked
/// extensions, header map layout): a hundred long lines that say nothing
/// about why a test failed.
fn is_startup_inventory(line: &str) -> bool {
    if !line.contains("][info][main] [source/server/server.cc:") {
        return false;
    }
    let Some(source) = line.find("[source/") else {
        return false;
    };
    line[source..].split_once("] ").is_some_and(|(_, message)| {
        message.starts_with("  ") || message.starts_with("HTTP header map")
    })
}

/// The last lines of `log`, framed for a test failure report.
fn log_tail(log: &str, pid: u32) -> String {
    let lines: Vec<&str> = log
        .lines()
        .filter(|line| !is_startup_inventory(line))
        .collect();
    let tail = &lines[lines.len().saturating_sub(LOG_TAIL_LINES)..];
    format!(
        "=== last {} lines of Envoy's log (pid {pid}) ===\n{}\n=== end of Envoy's log ===",
        tail.len(),
        tail.join("\n")
    )
}

/// Where an Envoy's files live: bootstrap, log, admin address.
struct Files {
    dir: TempDir,
}

impl Files {
    fn new() -> std::io::Result<Files> {
        Ok(Files {
            dir: tempfile::Builder::new()
                .prefix("floodgate-envoy-")
                .tempdir()?,
        })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

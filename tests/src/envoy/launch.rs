//! Starting Envoy and waiting for it to serve, or to fail.

use std::fs::{self, File};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::admin::{listener_port, try_admin};
use super::{log_tail, read_log, Envoy, EnvoyBuilder, Files, StartError};
use crate::process::Process;

/// How long Envoy may take to start: it compiles the plugin once per VM.
const STARTUP: Duration = Duration::from_secs(60);

/// Pause between two readiness checks.
const POLL: Duration = Duration::from_millis(25);

/// A `--base-id` no other Envoy of this machine uses: this process's pid and
/// a counter. Hot restart is disabled as well, so no shared memory is left
/// behind by an Envoy that had to be killed.
fn base_id() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let counter = NEXT.fetch_add(1, Ordering::Relaxed) % 1000;
    (std::process::id() % 4_000_000) * 1000 + counter
}

/// Writes the bootstrap and spawns Envoy on it.
fn spawn(builder: &EnvoyBuilder) -> Result<(Process, Files), StartError> {
    let files = Files::new().map_err(|e| StartError(format!("temp dir: {e}")))?;
    let bootstrap = if builder.lds {
        let lds = files.path("lds.yaml");
        fs::write(&lds, builder.bootstrap().lds_yaml())
            .map_err(|e| StartError(format!("write LDS file: {e}")))?;
        builder.bootstrap().to_yaml_with_lds(&lds)
    } else {
        builder.bootstrap_yaml()
    };
    fs::write(files.path("bootstrap.yaml"), bootstrap)
        .map_err(|e| StartError(format!("write bootstrap: {e}")))?;
    let console = File::create(files.path("console.log")).map_err(|e| StartError(e.to_string()))?;

    let mut command = Command::new(crate::envoy_binary());
    command
        .arg("--config-path")
        .arg(files.path("bootstrap.yaml"))
        .arg("--admin-address-path")
        .arg(files.path("admin_address"))
        .arg("--log-path")
        .arg(files.path("envoy.log"))
        // Flush the log file often, so `wait_for_log` sees lines while
        // Envoy runs (the default is every 10 s).
        .args(["--file-flush-interval-msec", "50"])
        .args(["--concurrency", &builder.concurrency.to_string()])
        .args(["--base-id", &base_id().to_string()])
        .arg("--disable-hot-restart")
        .args(["--log-level", "info"])
        .args([
            "--component-log-level",
            &format!("wasm:{}", builder.wasm_log_level),
        ])
        .stdin(std::process::Stdio::null())
        .stdout(console.try_clone().map_err(|e| StartError(e.to_string()))?)
        .stderr(console);
    let process = Process::spawn(command).map_err(|e| StartError(format!("spawn Envoy: {e}")))?;
    Ok((process, files))
}

/// What a readiness check saw.
enum Progress {
    /// Not there yet.
    Starting,
    /// Serving: admin says LIVE and the listener has a port.
    Ready { admin_port: u16, listener_port: u16 },
}

/// One look at the admin address file, `/ready` and `/listeners`.
fn check(files: &Files) -> Progress {
    let Ok(address) = fs::read_to_string(files.path("admin_address")) else {
        return Progress::Starting;
    };
    let Some(admin_port) = address
        .trim()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
    else {
        return Progress::Starting;
    };
    match try_admin(admin_port, "/ready") {
        Ok(body) if body.trim() == "LIVE" => {}
        _ => return Progress::Starting,
    }
    match listener_port(admin_port, "floodgate") {
        Ok(Some(listener_port)) => Progress::Ready {
            admin_port,
            listener_port,
        },
        _ => Progress::Starting,
    }
}

/// A start-up error carrying `reason` and the tail of Envoy's log.
fn failure(reason: impl std::fmt::Display, process: &Process, files: &Files) -> StartError {
    let log = read_log(files.dir.path());
    StartError(format!("{reason}\n{}", log_tail(&log, process.pid())))
}

pub(super) fn start(builder: &EnvoyBuilder) -> Result<Envoy, StartError> {
    let (mut process, files) = spawn(builder)?;
    let deadline = Instant::now() + STARTUP;
    loop {
        if let Some(status) = process.exited() {
            return Err(failure(
                format!("Envoy exited at start-up ({status})"),
                &process,
                &files,
            ));
        }
        if let Progress::Ready {
            admin_port,
            listener_port,
        } = check(&files)
        {
            return Ok(Envoy {
                process,
                files,
                admin_port,
                listener_port,
                builder: builder.clone(),
            });
        }
        if Instant::now() >= deadline {
            process.stop();
            return Err(failure(
                format!("Envoy not ready after {STARTUP:?}"),
                &process,
                &files,
            ));
        }
        std::thread::sleep(POLL);
    }
}

pub(super) fn start_expect_failure(builder: &EnvoyBuilder) -> Result<String, StartError> {
    let (mut process, files) = spawn(builder)?;
    let deadline = Instant::now() + STARTUP;
    loop {
        if let Some(status) = process.exited() {
            if status.success() {
                return Err(failure("Envoy exited with success", &process, &files));
            }
            return Ok(read_log(files.dir.path()));
        }
        if let Progress::Ready { .. } = check(&files) {
            process.stop();
            return Err(failure("Envoy started serving", &process, &files));
        }
        if Instant::now() >= deadline {
            process.stop();
            return Err(failure(
                "Envoy neither failed nor started",
                &process,
                &files,
            ));
        }
        std::thread::sleep(POLL);
    }
}

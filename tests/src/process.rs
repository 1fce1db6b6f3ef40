//! A child process that is always stopped: SIGTERM, then SIGKILL after a grace
//! period, both by its own pid.

use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

/// How long a child gets to exit after SIGTERM before it is killed.
const GRACE: Duration = Duration::from_secs(5);

/// Owns a running child process and stops it on drop.
pub(crate) struct Process {
    child: Child,
}

impl Process {
    /// Spawns `command`. The child also receives SIGKILL if the thread that
    /// spawned it dies first (a test runner killed mid-test leaves nothing).
    pub(crate) fn spawn(mut command: Command) -> std::io::Result<Process> {
        use std::os::unix::process::CommandExt;
        // SAFETY: prctl is async-signal-safe and touches only the child.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
        Ok(Process {
            child: command.spawn()?,
        })
    }

    /// The child's pid.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit status, if the child has exited.
    pub(crate) fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Waits until the child exits or `deadline` passes.
    pub(crate) fn wait_until(&mut self, deadline: Instant) -> Option<ExitStatus> {
        loop {
            if let Some(status) = self.exited() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the child: SIGTERM, then SIGKILL if it outlives the grace period.
    pub(crate) fn stop(&mut self) -> Option<ExitStatus> {
        if let Some(status) = self.exited() {
            return Some(status);
        }
        let pid = libc::pid_t::try_from(self.pid()).expect("pid fits pid_t");
        // SAFETY: plain syscall on our own child's pid, which is not yet reaped.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        if let Some(status) = self.wait_until(Instant::now() + GRACE) {
            return Some(status);
        }
        let _ = self.child.kill();
        self.child.wait().ok()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.stop();
    }
}

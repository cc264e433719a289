//! A Litestream that an earlier agent started and could not stop (an agent killed with
//! SIGKILL cannot stop its children): found by the pid the agent recorded in the runtime's
//! folder, and only while that pid still runs Litestream for that folder.

use std::path::Path;

use super::PID_FILE;

/// Sends SIGKILL to the Litestream an earlier agent ran for the runtime in `dir`, if it still
/// runs; its pid.
pub(super) fn kill_leftover(id: &str, dir: &Path) -> Option<i32> {
    let pid = std::fs::read_to_string(dir.join(PID_FILE))
        .ok()
        .and_then(|p| p.trim().parse::<i32>().ok())?;
    if !leftover_runs(pid, dir) {
        return None;
    }
    tracing::info!(runtime = %id, pid, "stopping the Litestream an earlier agent left");
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    );
    Some(pid)
}

pub(super) fn leftover_runs(pid: i32, dir: &Path) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
        let c = String::from_utf8_lossy(&c);
        c.contains("litestream") && c.contains(&*dir.to_string_lossy())
    }) && tessera_infra::process::pid_runs(pid as u32, dir)
}

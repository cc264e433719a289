//! Small process helpers shared by everything that supervises local processes (the local
//! provider, the agent's runtime supervisor, the control plane's own Temporal server).

use std::net::TcpListener;
use std::path::Path;

/// Whether `pid` is alive (not a zombie) and its command line mentions `needle` (a directory
/// or file only that process uses), so that a recycled pid is never mistaken for ours.
pub fn pid_runs(pid: u32, needle: &Path) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat
        .rsplit(')')
        .next()
        .and_then(|s| s.split_whitespace().next());
    if stat.is_empty() || state == Some("Z") {
        return false;
    }
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| String::from_utf8_lossy(&c).contains(&*needle.to_string_lossy()))
        .unwrap_or(false)
}

/// A loopback port free right now.
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_our_own_process_by_what_its_command_line_names() {
        let me = std::process::id();
        let exe = std::env::current_exe().unwrap();
        assert!(pid_runs(me, &exe));
        assert!(!pid_runs(me, Path::new("/no/such/dir/anywhere")));
        assert!(!pid_runs(u32::MAX - 1, &exe));
        assert!(free_port().unwrap() > 0);
    }
}

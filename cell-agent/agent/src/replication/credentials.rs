//! Litestream's credentials for a replica in a bucket: only what the control plane issues this
//! cell for that replica, never an identity from the agent's own environment. Litestream's
//! AWS config names `cell-agent --dir <cell> replica-credentials --runtime <id>` as its
//! `credential_process`; the AWS SDK in Litestream runs it again before they expire.

use std::path::{Path, PathBuf};

use tokio::process::Command;

/// Points `cmd` (a Litestream) at the issued credentials of runtime `id`, whose folder is
/// `runtime_dir`, in the cell at `cell_dir`.
pub(super) fn use_issued(cmd: &mut Command, cell_dir: &Path, runtime_dir: &Path, id: &str) {
    for name in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
    ] {
        cmd.env_remove(name);
    }
    match aws_config(cell_dir, runtime_dir, id) {
        Ok(config) => {
            cmd.env("AWS_CONFIG_FILE", config)
                .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null");
        }
        Err(e) => {
            tracing::warn!(runtime = %id, error = %e, "writing Litestream's AWS config failed")
        }
    }
}

/// Writes (when it changed) the runtime's AWS config file with its `credential_process`.
fn aws_config(cell_dir: &Path, runtime_dir: &Path, id: &str) -> std::io::Result<PathBuf> {
    // An agent binary replaced on disk since it started reads as "… (deleted)".
    let exe = std::env::current_exe()?;
    let agent = PathBuf::from(exe.to_string_lossy().trim_end_matches(" (deleted)"));
    let config = format!(
        "[default]\ncredential_process = {} --dir {} replica-credentials --runtime {}\n",
        quoted(&agent),
        quoted(cell_dir),
        id
    );
    let path = runtime_dir.join("aws-config");
    if std::fs::read_to_string(&path).ok().as_deref() != Some(config.as_str()) {
        crate::identity::write_atomic(&path, config.as_bytes(), 0o600)?;
    }
    Ok(path)
}

/// `p` as one word of a shell command line (the SDK runs `sh -c`).
fn quoted(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_asks_the_agent_for_this_runtimes_credentials() {
        let dir = tempfile::tempdir().unwrap();
        let cell = dir.path().join("it's a cell");
        let path = aws_config(&cell, dir.path(), "ns-1").unwrap();
        let text = std::fs::read_to_string(path).unwrap();
        assert!(
            text.starts_with("[default]\ncredential_process = '"),
            "{text}"
        );
        assert!(
            text.ends_with(&format!(
                " --dir '{}/it'\\''s a cell' replica-credentials --runtime ns-1\n",
                dir.path().display()
            )),
            "{text}"
        );
    }
}

//! The local Temporal server the control plane starts when `TEMPORAL_ADDRESS` is unset.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use tessera_control_plane::config::Config;
use tessera_control_plane::metrics::Metrics;
use tessera_control_plane::temporal;
use tokio_util::sync::CancellationToken;

/// A `temporal` that exits at once for its first `failures` runs (as a server does whose port
/// was taken between choosing and binding it), then runs the real one.
fn flaky_bin(dir: &Path, real: &Path, failures: u32) -> std::path::PathBuf {
    let bin = dir.join("flaky-temporal");
    let runs = dir.join("runs");
    std::fs::write(
        &bin,
        format!(
            "#!/bin/sh\necho run >> '{runs}'\nif [ $(wc -l < '{runs}') -le {failures} ]; then\n  echo 'listen tcp: address already in use' >&2\n  exit 1\nfi\nexec '{real}' \"$@\"\n",
            runs = runs.display(),
            real = real.display(),
        ),
    )
    .unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

fn runs(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("runs"))
        .unwrap_or_default()
        .lines()
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_exits_while_starting_is_started_again_on_other_ports() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = Config::for_tests(dir.path().join("data"));
    let bin = flaky_bin(dir.path(), &cfg.temporal_bin, 2);
    let cancel = CancellationToken::new();
    let local = temporal::start(
        &bin,
        &cfg.data_dir,
        &cfg.temporal_namespace,
        Metrics::new(),
        cancel.clone(),
    )
    .await
    .expect("the third start serves");
    assert_eq!(runs(dir.path()), 3);
    tessera_workflows::client::connect_client(&local.address, &cfg.temporal_namespace)
        .await
        .expect("the server answers on the address start returned");
    cancel.cancel();
    local.task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_never_starts_fails_at_once_with_where_to_look() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = Config::for_tests(dir.path().join("data"));
    let bin = flaky_bin(dir.path(), &cfg.temporal_bin, u32::MAX);
    let started = Instant::now();
    let err = temporal::start(
        &bin,
        &cfg.data_dir,
        &cfg.temporal_namespace,
        Metrics::new(),
        CancellationToken::new(),
    )
    .await
    .err()
    .expect("a server that always exits fails the start");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "no waiting out the readiness deadline"
    );
    assert_eq!(runs(dir.path()), 5);
    let msg = format!("{err:#}");
    assert!(
        msg.contains("exited while starting") && msg.contains("temporal.log"),
        "{msg}"
    );
}

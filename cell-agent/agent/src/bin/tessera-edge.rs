//! `tessera-edge`: the SNI router every namespace endpoint points at (see `tessera_cell_agent::edge`).

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use tessera_cell_agent::config::JoinArgs;
use tessera_cell_agent::edge::EdgeArgs;

#[derive(Debug, Parser)]
#[command(
    name = "tessera-edge",
    version,
    about = "Tessera edge: SNI pass-through in front of every cell"
)]
struct Cli {
    /// The edge's directory: its identity and cached routes.
    #[arg(
        long,
        env = "TESSERA_EDGE_DIR",
        default_value = "./edge",
        global = true
    )]
    dir: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Trade a one-time join token (`POST /api/v1/admin/edges`) for the edge's identity.
    Join(JoinArgs),
    /// Serve the routes.
    Run(EdgeArgs),
}

#[tokio::main]
async fn main() -> Result<(), tessera_cell_agent::AgentError> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    tessera_cell_agent::install_crypto_provider();
    let cli = Cli::parse();
    match cli.command {
        Command::Join(a) => {
            let id =
                tessera_cell_agent::join::join_edge(&cli.dir, a.control_plane.as_deref(), &a.token)
                    .await?;
            println!(
                "joined as edge {} ({})",
                id.membership.cell_id, id.membership.region
            );
            Ok(())
        }
        Command::Run(a) => tessera_cell_agent::edge::run(&cli.dir, a).await,
    }
}

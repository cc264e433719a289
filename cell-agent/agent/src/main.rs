use clap::Parser;
use tessera_cell_agent::config::{Cli, Command};

#[tokio::main]
async fn main() -> Result<(), tessera_cell_agent::AgentError> {
    // Logs go to stderr: `replica-credentials` answers on stdout.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    tessera_cell_agent::install_crypto_provider();
    let cli = Cli::parse();
    match cli.command {
        Command::Join(a) => {
            let id = tessera_cell_agent::join::join(&cli.dir, a.control_plane.as_deref(), &a.token)
                .await?;
            println!(
                "joined as cell {} ({}, ring {})",
                id.membership.cell_id, id.membership.region, id.membership.ring
            );
            Ok(())
        }
        Command::Run(a) => tessera_cell_agent::run::run(&cli.dir, a).await,
        Command::ReplicaCredentials(a) => {
            let identity = tessera_cell_agent::identity::Identity::load(&cli.dir)?;
            let issued = tessera_cell_agent::control_plane::ControlPlane::new(&identity)?
                .replica_credentials(&a.runtime)
                .await?;
            println!("{}", serde_json::to_string(&issued).expect("JSON"));
            Ok(())
        }
    }
}

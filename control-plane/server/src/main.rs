use clap::Parser;
use tessera_control_plane::{Config, run, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    config.validate().map_err(anyhow::Error::msg)?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let _telemetry = telemetry::init(&config.log_format)?;
    run(config).await
}

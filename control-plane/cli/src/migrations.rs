//! `tessera admin migrations …` (platform-admin key): move a namespace to another cell live,
//! follow the move, cut it over or abort it; and `tessera admin edges …`.

use std::time::Duration;

use anyhow::bail;
use clap::{Subcommand, ValueEnum};
use tessera_api::edge::CreateEdge;
use tessera_api::{CutoverMode, Migration, MigrationState, StartMigration};
use tessera_client::Client;
use uuid::Uuid;

use crate::output::{Output, or_dash, out, print_item, print_list, print_pairs, print_table, time};

#[derive(Subcommand)]
pub enum MigrationsCmd {
    /// Move a namespace (`<name>.<account-slug>`) to a cell; `--wait` follows it to the end.
    Start {
        namespace: String,
        #[arg(long)]
        target_cell: String,
        /// `manual` waits for `tessera admin migrations cutover`.
        #[arg(long, value_enum, default_value = "auto")]
        cutover: CutoverArg,
        #[arg(long)]
        wait: bool,
    },
    /// Every migration, newest first.
    List,
    /// One migration: state, lag, step times.
    Get { id: Uuid },
    /// Follow a migration until it ends, with its phase, lag and a progress bar: exit status
    /// 0 when completed, 1 when aborted or failed.
    Watch { id: Uuid },
    /// Cut a migration over now.
    Cutover { id: Uuid },
    /// Abort a migration before its cutover: nothing changes for clients.
    Abort { id: Uuid },
}

#[derive(Subcommand)]
pub enum EdgesCmd {
    /// Every edge, with the generation of the routes it serves.
    List,
    /// Register an edge in a region; prints its one-time join token
    /// (`tessera-edge join --token …`).
    Create {
        #[arg(long)]
        region: String,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum CutoverArg {
    Auto,
    Manual,
}

pub async fn run(c: &Client, out: Output, cmd: MigrationsCmd) -> anyhow::Result<()> {
    match cmd {
        MigrationsCmd::Start {
            namespace,
            target_cell,
            cutover,
            wait,
        } => {
            let started = c
                .start_migration(&StartMigration {
                    namespace,
                    target_cell,
                    cutover: match cutover {
                        CutoverArg::Auto => CutoverMode::Auto,
                        CutoverArg::Manual => CutoverMode::Manual,
                    },
                })
                .await?;
            if wait {
                return watch(c, out, started.migration.id).await;
            }
            print_item(out, &started)?;
        }
        MigrationsCmd::List => match out {
            Output::Json => print_list(out, &c.list_migrations().await?)?,
            Output::Table => print_table(
                &["id", "namespace", "from", "to", "state", "lag", "created"],
                c.list_migrations()
                    .await?
                    .into_iter()
                    .map(|m| {
                        vec![
                            m.id.to_string(),
                            m.namespace.clone(),
                            m.source_cell.clone(),
                            m.target_cell.clone(),
                            m.state.as_str().to_string(),
                            lag(&m),
                            time(m.created_at),
                        ]
                    })
                    .collect(),
            ),
        },
        MigrationsCmd::Get { id } => {
            let m = c.migration(id).await?;
            match out {
                Output::Json => print_item(out, &m)?,
                Output::Table => show(&m),
            }
        }
        MigrationsCmd::Watch { id } => watch(c, out, id).await?,
        MigrationsCmd::Cutover { id } => {
            print_item(out, &c.migration_action(id, "cutover").await?.migration)?
        }
        MigrationsCmd::Abort { id } => {
            print_item(out, &c.migration_action(id, "abort").await?.migration)?
        }
    }
    Ok(())
}

pub async fn run_edges(c: &Client, out: Output, cmd: EdgesCmd) -> anyhow::Result<()> {
    match cmd {
        EdgesCmd::List => print_list(out, &c.list_edges().await?)?,
        EdgesCmd::Create { region } => {
            print_item(out, &c.create_edge(&CreateEdge { region }).await?)?
        }
    }
    Ok(())
}

fn lag(m: &Migration) -> String {
    match (m.progress.lag_seconds, m.progress.lag_bytes) {
        (Some(s), Some(b)) => format!("{s:.2} s / {b} B"),
        (Some(s), None) => format!("{s:.2} s"),
        _ => "-".into(),
    }
}

fn show(m: &Migration) {
    print_pairs(vec![
        ("id", m.id.to_string()),
        ("namespace", m.namespace.clone()),
        ("from", m.source_cell.clone()),
        ("to", m.target_cell.clone()),
        ("state", m.state.as_str().to_string()),
        ("cutover", m.cutover.as_str().to_string()),
        ("lag", lag(m)),
        (
            "final_txid",
            m.progress
                .final_txid
                .map(|t| t.to_string())
                .unwrap_or_default(),
        ),
        (
            "cutover_ms",
            m.progress
                .cutover_ms
                .map(|t| t.to_string())
                .unwrap_or_default(),
        ),
        ("error", or_dash(m.error.as_deref().unwrap_or_default())),
        ("operation", m.operation_id.to_string()),
    ]);
    print_table(
        &["step", "at"],
        m.progress
            .steps
            .iter()
            .map(|s| vec![s.state.as_str().to_string(), time(s.at)])
            .collect(),
    );
}

/// How far along a migration is, for the bar.
fn percent(state: MigrationState) -> u64 {
    match state {
        MigrationState::Started => 5,
        MigrationState::Replicating => 25,
        MigrationState::ReadyForCutover => 60,
        MigrationState::CuttingOver => 80,
        MigrationState::Aborting => 90,
        MigrationState::Completed | MigrationState::Aborted | MigrationState::Failed => 100,
    }
}

async fn watch(c: &Client, out: Output, id: Uuid) -> anyhow::Result<()> {
    let pb = crate::progress_bar(out == Output::Table)?;
    loop {
        let m = c.migration(id).await?;
        pb.set_position(percent(m.state));
        pb.set_message(format!("{} (lag {})", m.state.as_str(), lag(&m)));
        match m.state {
            MigrationState::Completed => {
                pb.finish_with_message("completed");
                match out {
                    Output::Json => print_item(out, &m)?,
                    Output::Table => show(&m),
                }
                return Ok(());
            }
            MigrationState::Aborted | MigrationState::Failed => {
                pb.abandon_with_message(m.state.as_str());
                if out == Output::Json {
                    print_item(out, &m)?;
                } else {
                    out!("");
                }
                bail!(
                    "migration {id} {}{}",
                    m.state.as_str(),
                    m.error.map(|e| format!(": {e}")).unwrap_or_default()
                );
            }
            _ => tokio::time::sleep(Duration::from_millis(300)).await,
        }
    }
}

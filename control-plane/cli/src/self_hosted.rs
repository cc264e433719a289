//! `tessera self-hosted …`: the account's own regions, and join tokens for its hosts.

use clap::Subcommand;
use tessera_api::{CreateSelfHostedJoinToken, CreateSelfHostedRegion};
use tessera_client::Client;

use crate::output::{Output, print_item, print_list};

#[derive(Subcommand)]
pub enum SelfHostedCmd {
    /// The account's own regions, each with its cells.
    Regions,
    /// Create a region of the account's own hosts (owners and admins).
    CreateRegion {
        /// e.g. `acme-dc-1`: lowercase letters, digits and dashes.
        id: String,
        #[arg(long)]
        location: String,
    },
    /// A one-time token with which one of your hosts joins a region as a cell.
    JoinToken {
        region: String,
        /// The ring the cell receives releases in (default 2).
        #[arg(long)]
        ring: Option<u32>,
    },
}

pub async fn run(c: &Client, out: Output, cmd: SelfHostedCmd) -> anyhow::Result<()> {
    match cmd {
        SelfHostedCmd::Regions => {
            let regions = c.list_own_regions().await?;
            match out {
                Output::Json => print_list(out, &regions)?,
                // One row a cell (a region without cells: one row with none).
                Output::Table => {
                    let rows: Vec<serde_json::Value> = regions
                        .iter()
                        .flat_map(|r| {
                            let region = serde_json::json!({
                                "region": r.region.id, "location": r.region.location,
                                "status": r.region.status,
                            });
                            let cells: Vec<_> = r
                                .cells
                                .iter()
                                .map(|c| {
                                    let mut row = region.clone();
                                    row["cell"] = c.id.clone().into();
                                    row["cell_status"] = c.status.as_str().into();
                                    row["ring"] = c.ring.into();
                                    row
                                })
                                .collect();
                            match cells.is_empty() {
                                true => vec![region],
                                false => cells,
                            }
                        })
                        .collect();
                    print_list(out, &rows)?;
                }
            }
        }
        SelfHostedCmd::CreateRegion { id, location } => print_item(
            out,
            &c.create_own_region(&CreateSelfHostedRegion { id, location })
                .await?,
        )?,
        SelfHostedCmd::JoinToken { region, ring } => {
            let t = c
                .create_own_join_token(&region, &CreateSelfHostedJoinToken { ring })
                .await?;
            print_item(out, &t)?;
            if matches!(out, Output::Table) {
                eprintln!("On the host: cell-agent --dir DIR join --token {}", t.token);
            }
        }
    }
    Ok(())
}

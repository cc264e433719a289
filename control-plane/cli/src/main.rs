//! `tessera`: the command-line tool, a thin layer over `tessera-client`.

mod config;
mod migrations;
mod namespaces;
mod output;
mod releases;
mod rollouts;
mod self_hosted;

use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use tessera_api::*;
use tessera_client::Client;
use uuid::Uuid;

use crate::output::{Output, out, print_item, print_list};

#[derive(Parser)]
#[command(
    name = "tessera",
    version,
    about = "Manage Tessera accounts, users, keys, namespaces, operations, regions, cells, releases and rollouts"
)]
struct Cli {
    /// Server URL; default: the one saved by `tessera login`, else http://127.0.0.1:8080.
    #[arg(long, env = "TESSERA_URL", global = true)]
    url: Option<String>,
    /// API key; default: the one saved by `tessera login`.
    #[arg(long, env = "TESSERA_API_KEY", global = true, hide_env_values = true)]
    api_key: Option<String>,
    #[arg(long, short = 'o', value_enum, default_value = "table", global = true)]
    output: Output,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check an API key against the server and save it in the config file.
    Login {
        #[arg(long)]
        api_key: String,
    },
    /// Show the current account.
    Account,
    #[command(subcommand)]
    Users(UsersCmd),
    #[command(subcommand, name = "service-accounts")]
    ServiceAccounts(ServiceAccountsCmd),
    #[command(subcommand, name = "api-keys")]
    ApiKeys(ApiKeysCmd),
    #[command(subcommand)]
    Operations(OperationsCmd),
    /// Regions namespaces can be created in.
    Regions,
    /// The account's own self-hosted regions and the join tokens of their hosts.
    #[command(subcommand, name = "self-hosted")]
    SelfHosted(self_hosted::SelfHostedCmd),
    /// Namespaces: create, inspect, change, delete; client certificates to connect with.
    #[command(subcommand, visible_alias = "ns")]
    Namespace(namespaces::NamespaceCmd),
    /// Platform operators (platform-admin key): regions, cells, releases, migrations, edges.
    #[command(subcommand)]
    Admin(AdminCmd),
    /// Roll a release out through the deployment rings, follow and steer it (platform-admin key).
    #[command(subcommand, visible_alias = "rollouts")]
    Rollout(rollouts::RolloutCmd),
}

#[derive(Subcommand)]
enum AdminCmd {
    #[command(subcommand)]
    Regions(AdminRegionsCmd),
    #[command(subcommand)]
    Cells(AdminCellsCmd),
    /// What the runtimes and agents of a cell run: publish, list, show.
    #[command(subcommand)]
    Releases(releases::ReleasesCmd),
    /// Move namespaces between cells, live: start, follow, cut over, abort.
    #[command(subcommand)]
    Migrations(migrations::MigrationsCmd),
    /// The edges every namespace endpoint points at: list, register.
    #[command(subcommand)]
    Edges(migrations::EdgesCmd),
}

#[derive(Subcommand)]
enum AdminRegionsCmd {
    List,
    Create {
        id: String,
        #[arg(long, value_enum)]
        cloud: CloudArg,
        #[arg(long)]
        location: String,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum CloudArg {
    Local,
    Aws,
    Gcp,
    SelfHosted,
}

impl From<CloudArg> for Cloud {
    fn from(c: CloudArg) -> Self {
        match c {
            CloudArg::Local => Cloud::Local,
            CloudArg::Aws => Cloud::Aws,
            CloudArg::Gcp => Cloud::Gcp,
            CloudArg::SelfHosted => Cloud::SelfHosted,
        }
    }
}

#[derive(Subcommand)]
enum AdminCellsCmd {
    List,
    /// A cell with its agent's last report.
    Get {
        id: String,
    },
    /// Provision a cell; `--wait` follows the operation with a progress bar.
    Provision {
        #[arg(long)]
        region: String,
        #[arg(long)]
        ring: u32,
        #[arg(long)]
        wait: bool,
    },
    /// Drain (its namespaces move to other cells of the region), destroy and forget a cell.
    Decommission {
        id: String,
        #[arg(long)]
        wait: bool,
    },
    /// Move every namespace of a cell to other cells of its region, live.
    Drain {
        id: String,
        /// Migrations at a time.
        #[arg(long, default_value_t = 2)]
        max_parallel: u32,
        #[arg(long)]
        wait: bool,
    },
    /// A one-time token for a self-hosted cell (`cell-agent join --token …`).
    JoinToken {
        #[arg(long)]
        region: String,
        #[arg(long)]
        ring: u32,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum RoleArg {
    Owner,
    Admin,
    Developer,
    ReadOnly,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Self {
        match r {
            RoleArg::Owner => Role::Owner,
            RoleArg::Admin => Role::Admin,
            RoleArg::Developer => Role::Developer,
            RoleArg::ReadOnly => Role::ReadOnly,
        }
    }
}

#[derive(Subcommand)]
enum UsersCmd {
    List,
    Invite {
        email: String,
        #[arg(long, value_enum)]
        role: RoleArg,
    },
    SetRole {
        id: Uuid,
        #[arg(long, value_enum)]
        role: RoleArg,
    },
    Remove {
        id: Uuid,
    },
}

#[derive(Subcommand)]
enum ServiceAccountsCmd {
    List,
    Create {
        name: String,
        #[arg(long, value_enum)]
        role: RoleArg,
    },
    Delete {
        id: Uuid,
    },
}

#[derive(Subcommand)]
enum ApiKeysCmd {
    List,
    Create {
        name: String,
        /// Lifetime in days (default 90).
        #[arg(long)]
        days: Option<i64>,
        /// Create the key for this service account.
        #[arg(long)]
        service_account: Option<Uuid>,
    },
    Revoke {
        id: Uuid,
    },
}

#[derive(Subcommand)]
enum OperationsCmd {
    List,
    Get {
        id: Uuid,
    },
    /// Wait until the operation ends, showing its progress.
    Wait {
        id: Uuid,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 600)]
        timeout: u64,
    },
}

#[tokio::main]
async fn main() {
    if let Err(e) = run(Cli::parse()).await {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let saved = config::load()?;
    let url = cli
        .url
        .or(saved.url.clone())
        .unwrap_or_else(|| "http://127.0.0.1:8080".into());
    let out = cli.output;
    if let Command::Login { api_key } = &cli.command {
        let client = Client::new(&url, Some(api_key.clone()))?;
        let account = client
            .account()
            .await
            .context("the server refused this API key")?;
        let path = config::save(&config::Config {
            url: Some(url),
            api_key: Some(api_key.clone()),
        })?;
        out!(
            "Logged in to account {} ({}); saved to {}",
            account.name,
            account.id,
            path.display()
        );
        return Ok(());
    }
    let token = cli.api_key.or(saved.api_key);
    if token.is_none() {
        bail!("not logged in: run `tessera login --api-key <key>` or set TESSERA_API_KEY");
    }
    let c = Client::new(&url, token)?;
    let all = PageQuery {
        page_size: Some(200),
        page_token: None,
    };
    match cli.command {
        Command::Login { .. } => unreachable!("handled above"),
        Command::Account => print_item(out, &c.account().await?)?,
        Command::Users(cmd) => match cmd {
            UsersCmd::List => print_list(out, &c.list_users(&all).await?.items)?,
            UsersCmd::Invite { email, role } => {
                let r = c
                    .invite_user(&InviteUserRequest {
                        email,
                        role: role.into(),
                    })
                    .await?;
                print_item(out, &r)?;
            }
            UsersCmd::SetRole { id, role } => print_item(
                out,
                &c.update_user(id, &UpdateUserRequest { role: role.into() })
                    .await?,
            )?,
            UsersCmd::Remove { id } => {
                c.remove_user(id).await?;
                out!("removed user {id}");
            }
        },
        Command::ServiceAccounts(cmd) => match cmd {
            ServiceAccountsCmd::List => {
                print_list(out, &c.list_service_accounts(&all).await?.items)?
            }
            ServiceAccountsCmd::Create { name, role } => {
                let sa = c
                    .create_service_account(&CreateServiceAccountRequest {
                        name,
                        role: role.into(),
                        namespace_access: None,
                    })
                    .await?;
                print_item(out, &sa)?;
            }
            ServiceAccountsCmd::Delete { id } => {
                c.delete_service_account(id).await?;
                out!("deleted service account {id}");
            }
        },
        Command::ApiKeys(cmd) => match cmd {
            ApiKeysCmd::List => print_list(out, &c.list_api_keys(&all).await?.items)?,
            ApiKeysCmd::Create {
                name,
                days,
                service_account,
            } => {
                let r = c
                    .create_api_key(&CreateApiKeyRequest {
                        name,
                        expires_at: days.map(|d| chrono::Utc::now() + chrono::Duration::days(d)),
                        owner: service_account.map(|id| CreateApiKeyOwner {
                            service_account_id: id,
                        }),
                    })
                    .await?;
                print_item(out, &r)?;
                if matches!(out, Output::Table) {
                    eprintln!("The token is shown only once: store it now.");
                }
            }
            ApiKeysCmd::Revoke { id } => {
                c.revoke_api_key(id).await?;
                out!("revoked API key {id}");
            }
        },
        Command::Operations(cmd) => match cmd {
            OperationsCmd::List => print_list(out, &c.list_operations(&all).await?.items)?,
            OperationsCmd::Get { id } => print_item(out, &c.operation(id).await?)?,
            OperationsCmd::Wait { id, timeout } => {
                let op = wait(
                    &c,
                    id,
                    Duration::from_secs(timeout),
                    matches!(out, Output::Table),
                )
                .await?;
                print_item(out, &op)?;
                if op.state != OperationState::Fulfilled {
                    bail!("operation {id} ended {}", op.state);
                }
            }
        },
        Command::Regions => print_list(out, &c.list_regions().await?)?,
        Command::Namespace(cmd) => namespaces::run(&c, out, cmd).await?,
        Command::SelfHosted(cmd) => self_hosted::run(&c, out, cmd).await?,
        Command::Rollout(cmd) => rollouts::run(&c, out, cmd).await?,
        Command::Admin(AdminCmd::Regions(cmd)) => match cmd {
            AdminRegionsCmd::List => print_list(out, &c.list_regions().await?)?,
            AdminRegionsCmd::Create {
                id,
                cloud,
                location,
            } => print_item(
                out,
                &c.create_region(&CreateRegion {
                    id,
                    cloud: cloud.into(),
                    location,
                })
                .await?,
            )?,
        },
        Command::Admin(AdminCmd::Releases(cmd)) => releases::run(&c, out, cmd).await?,
        Command::Admin(AdminCmd::Migrations(cmd)) => migrations::run(&c, out, cmd).await?,
        Command::Admin(AdminCmd::Edges(cmd)) => migrations::run_edges(&c, out, cmd).await?,
        Command::Admin(AdminCmd::Cells(cmd)) => match cmd {
            AdminCellsCmd::List => print_list(out, &c.list_cells(&all).await?.items)?,
            AdminCellsCmd::Get { id } => print_item(out, &c.cell(&id).await?)?,
            AdminCellsCmd::Provision { region, ring, wait } => {
                let r = c
                    .provision_cell(&ProvisionCell {
                        region,
                        ring,
                        labels: None,
                        provider_config: None,
                    })
                    .await?;
                follow(&c, out, r, wait).await?;
            }
            AdminCellsCmd::Decommission { id, wait } => {
                let r = c.decommission_cell(&id).await?;
                follow(&c, out, r, wait).await?;
            }
            AdminCellsCmd::Drain {
                id,
                max_parallel,
                wait,
            } => {
                let req = DrainCell {
                    max_parallel: Some(max_parallel),
                };
                let r = c.drain_cell(&id, &req).await?;
                follow(&c, out, r, wait).await?;
            }
            AdminCellsCmd::JoinToken { region, ring } => {
                let t = c
                    .create_join_token(&CreateJoinToken {
                        region,
                        ring,
                        labels: None,
                    })
                    .await?;
                print_item(out, &t)?;
                if matches!(out, Output::Table) {
                    eprintln!(
                        "On the cell's host: cell-agent --dir DIR join --token {}",
                        t.token
                    );
                }
            }
        },
    }
    Ok(())
}

/// Prints a cell operation's answer, or waits for the operation and prints the cell after it.
async fn follow(
    c: &Client,
    out: Output,
    r: CellOperation,
    wait_for_it: bool,
) -> anyhow::Result<()> {
    if !wait_for_it {
        return print_item(out, &r);
    }
    succeeded(c, out, r.operation.id).await?;
    print_item(out, &c.cell(&r.cell.id).await?)
}

/// Waits for the operation (with a progress bar in table output); an error with the
/// operation's own message unless it is fulfilled.
async fn succeeded(c: &Client, out: Output, id: Uuid) -> anyhow::Result<Operation> {
    let op = wait(
        c,
        id,
        Duration::from_secs(600),
        matches!(out, Output::Table),
    )
    .await?;
    if op.state != OperationState::Fulfilled {
        let why = op.error.map(|e| e.message).unwrap_or_default();
        bail!("operation {} ended {}: {why}", op.id, op.state);
    }
    Ok(op)
}

/// Polls the operation until it ends; draws a progress bar on a terminal.
pub(crate) async fn wait(
    c: &Client,
    id: Uuid,
    timeout: Duration,
    bar: bool,
) -> anyhow::Result<Operation> {
    let pb = progress_bar(bar)?;
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let op = c.operation(id).await?;
        pb.set_position((op.progress * 100.0).round() as u64);
        // The step the workflow reports (e.g. `placing the namespace on a cell`), else the state.
        pb.set_message(op.step.clone().unwrap_or_else(|| op.state.to_string()));
        if op.state == OperationState::Fulfilled {
            pb.finish_with_message(op.state.to_string());
            return Ok(op);
        }
        if op.state.is_terminal() {
            // Left where it stopped: a failed operation does not show 100%.
            pb.abandon_with_message(op.state.to_string());
            return Ok(op);
        }
        if tokio::time::Instant::now() >= deadline {
            pb.abandon();
            bail!("operation {id} still {} after {timeout:?}", op.state);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A 0–100 % bar with a message, drawn on stderr when it is a terminal; `visible = false`
/// draws nothing (JSON output).
pub(crate) fn progress_bar(visible: bool) -> anyhow::Result<ProgressBar> {
    let pb = if visible {
        ProgressBar::new(100)
    } else {
        ProgressBar::hidden()
    };
    pb.set_style(
        ProgressStyle::with_template("{spinner} [{bar:30}] {pos:>3}% {msg}")?.progress_chars("=> "),
    );
    Ok(pb)
}

/// Every item of a paged list: `list` is called with each page's query in turn.
pub(crate) async fn all_pages<T, F, Fut>(mut list: F) -> anyhow::Result<Vec<T>>
where
    F: FnMut(PageQuery) -> Fut,
    Fut: Future<Output = tessera_client::Result<Page<T>>>,
{
    let mut page = PageQuery {
        page_size: Some(200),
        page_token: None,
    };
    let mut items = vec![];
    loop {
        let p = list(page.clone()).await?;
        items.extend(p.items);
        match p.next_page_token {
            Some(t) => page.page_token = Some(t),
            None => return Ok(items),
        }
    }
}

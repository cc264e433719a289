//! `tessera namespace …` (alias `ns`): create, inspect, change and delete namespaces, and get a
//! client certificate with everything an SDK or the `temporal` CLI needs to connect.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{ArgGroup, Subcommand};
use serde_json::json;
use tessera_api::*;
use tessera_client::Client;

use crate::output::{Output, or_dash, out, print_item, print_list, print_pairs, print_table, time};

#[derive(Subcommand)]
pub enum NamespaceCmd {
    /// The account's namespaces.
    List,
    /// A namespace with its endpoint.
    Get { name: String },
    /// Create a namespace; `--wait` follows the operation with a progress bar.
    #[command(group(ArgGroup::new("client_ca").required(true).args(["ca_file", "generate_ca"])))]
    Create {
        name: String,
        #[arg(long)]
        region: String,
        #[arg(long)]
        retention_days: u32,
        /// PEM bundle of the CA certificates that sign your clients' certificates.
        #[arg(long, value_name = "PEM_PATH")]
        ca_file: Option<PathBuf>,
        /// Let Tessera generate the namespace's client CA; `tessera namespace client-cert`
        /// then issues client certificates.
        #[arg(long)]
        generate_ca: bool,
        #[arg(long)]
        wait: bool,
    },
    /// Change the retention and/or replace the accepted client CA bundle.
    #[command(group(
        ArgGroup::new("change").required(true).multiple(true).args(["retention_days", "ca_file"])
    ))]
    Update {
        name: String,
        #[arg(long)]
        retention_days: Option<u32>,
        /// A PEM bundle that replaces the accepted one: to rotate, give the old and the new CA,
        /// move the clients over, then give the new CA alone.
        #[arg(long, value_name = "PEM_PATH")]
        ca_file: Option<PathBuf>,
        #[arg(long)]
        wait: bool,
    },
    /// Delete a namespace with its workflows and history.
    Delete {
        name: String,
        #[arg(long)]
        wait: bool,
    },
    /// Move the namespace, live, to a cell of another region (the platform's, or one of your
    /// own self-hosted regions): clients keep its address; `--wait` follows the move to the
    /// end with its phase and a progress bar.
    Move {
        name: String,
        #[arg(long)]
        region: String,
        #[arg(long)]
        wait: bool,
    },
    /// Abort the namespace's move before its cutover: nothing changes for clients.
    AbortMove {
        name: String,
        #[arg(long)]
        wait: bool,
    },
    /// Standby replicas: warm copies in cells of other regions (or the active region's
    /// other cell).
    #[command(subcommand)]
    Replica(ReplicaCmd),
    /// Issue a client certificate from the namespace's generated CA, with the files to connect.
    ///
    /// Writes to `--out-dir` the certificate (NAME.pem), its key (NAME.key, mode 0600, shown
    /// only once) and the CA of the namespace's endpoint (NAME-server-ca.pem), then prints how
    /// to connect.
    ClientCert {
        name: String,
        #[arg(long)]
        common_name: String,
        #[arg(long, default_value_t = 30)]
        valid_days: u32,
        #[arg(long, default_value = ".")]
        out_dir: PathBuf,
        /// Overwrite files that already exist.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Subcommand)]
pub enum ReplicaCmd {
    /// Add a standby in a cell of REGION; `--wait` follows it until it is in sync.
    Add {
        name: String,
        #[arg(long)]
        region: String,
        #[arg(long)]
        wait: bool,
    },
    /// Remove the standby in REGION (its copy goes to its cell's trash).
    Remove {
        name: String,
        #[arg(long)]
        region: String,
        #[arg(long)]
        wait: bool,
    },
    /// The namespace's standbys with their state and lag.
    List { name: String },
}

pub async fn run(c: &Client, out: Output, cmd: NamespaceCmd) -> anyhow::Result<()> {
    match cmd {
        NamespaceCmd::List => {
            let items = crate::all_pages(|p| async move { c.list_namespaces(&p).await }).await?;
            match out {
                Output::Json => print_list(out, &items)?,
                Output::Table => print_table(
                    &[
                        "name",
                        "region",
                        "state",
                        "address",
                        "tls_server_name",
                        "retention_days",
                    ],
                    items
                        .iter()
                        .map(|n| {
                            vec![
                                n.name.clone(),
                                n.region.clone(),
                                n.state.to_string(),
                                or_dash(&n.endpoint.address),
                                n.endpoint.tls_server_name.clone(),
                                n.retention_days.to_string(),
                            ]
                        })
                        .collect(),
                ),
            }
        }
        NamespaceCmd::Get { name } => show(out, &c.namespace(&name).await?)?,
        NamespaceCmd::Create {
            name,
            region,
            retention_days,
            ca_file,
            generate_ca,
            wait,
        } => {
            let r = c
                .create_namespace(&CreateNamespace {
                    name,
                    region,
                    retention_days,
                    accepted_client_ca: ca_file.as_deref().map(read_pem).transpose()?,
                    generate_ca: generate_ca.then_some(true),
                })
                .await?;
            follow(c, out, r, wait).await?;
        }
        NamespaceCmd::Update {
            name,
            retention_days,
            ca_file,
            wait,
        } => {
            let r = c
                .update_namespace(
                    &name,
                    &UpdateNamespace {
                        retention_days,
                        accepted_client_ca: ca_file.as_deref().map(read_pem).transpose()?,
                    },
                )
                .await?;
            follow(c, out, r, wait).await?;
        }
        NamespaceCmd::Delete { name, wait } => {
            let r = c.delete_namespace(&name).await?;
            if !wait {
                return started(out, &r);
            }
            // Once deleted the namespace is not found any more: show the operation.
            let op = crate::succeeded(c, out, r.operation.id).await?;
            match out {
                Output::Json => print_item(out, &op)?,
                Output::Table => out!("deleted namespace {}", r.namespace.name),
            }
        }
        NamespaceCmd::Move { name, region, wait } => {
            let r = c.move_namespace(&name, &MoveNamespace { region }).await?;
            follow(c, out, r, wait).await?;
        }
        NamespaceCmd::AbortMove { name, wait } => {
            let r = c.abort_namespace_move(&name).await?;
            // The aborted move's operation ends failed ("the migration was aborted").
            if wait {
                let op = crate::wait(
                    c,
                    r.operation.id,
                    std::time::Duration::from_secs(600),
                    out == Output::Table,
                )
                .await?;
                if op.state != OperationState::Failed {
                    bail!("the move ended {} before the abort", op.state);
                }
            }
            started(out, &r)?;
        }
        NamespaceCmd::Replica(cmd) => replica(c, out, cmd).await?,
        NamespaceCmd::ClientCert {
            name,
            common_name,
            valid_days,
            out_dir,
            force,
        } => client_cert(c, out, &name, common_name, valid_days, &out_dir, force).await?,
    }
    Ok(())
}

async fn replica(c: &Client, out: Output, cmd: ReplicaCmd) -> anyhow::Result<()> {
    match cmd {
        ReplicaCmd::Add { name, region, wait } => {
            let r = c.add_replica(&name, &AddReplica { region }).await?;
            follow(c, out, r, wait).await
        }
        ReplicaCmd::Remove { name, region, wait } => {
            let r = c.remove_replica(&name, &region).await?;
            follow(c, out, r, wait).await
        }
        ReplicaCmd::List { name } => {
            let ns = c.namespace(&name).await?;
            match out {
                Output::Json => print_list(out, &ns.replicas),
                Output::Table => {
                    print_table(
                        &["region", "cell", "state", "lag_seconds", "last_applied_at"],
                        ns.replicas
                            .iter()
                            .map(|r| {
                                vec![
                                    r.region.clone(),
                                    r.cell.clone(),
                                    r.state.clone(),
                                    r.lag_seconds.map_or("-".into(), |l| format!("{l:.2}")),
                                    r.last_applied_at.map_or("-".into(), time),
                                ]
                            })
                            .collect(),
                    );
                    Ok(())
                }
            }
        }
    }
}

/// Prints the answer of a create/update/delete, or waits for its operation and prints the
/// namespace after it.
async fn follow(
    c: &Client,
    out: Output,
    r: NamespaceOperation,
    wait_for_it: bool,
) -> anyhow::Result<()> {
    if !wait_for_it {
        return started(out, &r);
    }
    crate::succeeded(c, out, r.operation.id).await?;
    show(out, &c.namespace(&r.namespace.name).await?)
}

/// The namespace as it is now, and how to follow the operation that changes it.
fn started(out: Output, r: &NamespaceOperation) -> anyhow::Result<()> {
    match out {
        Output::Json => print_item(out, r)?,
        Output::Table => {
            show(out, &r.namespace)?;
            eprintln!(
                "Operation {} is {}: follow it with `tessera operations wait {}`.",
                r.operation.id, r.operation.state, r.operation.id
            );
        }
    }
    Ok(())
}

/// One namespace: the API's shape in JSON; in a table, its fields with the endpoint flattened
/// (the server's CA is left out: `-o json` or `client-cert` give it).
fn show(out: Output, ns: &Namespace) -> anyhow::Result<()> {
    if let Output::Json = out {
        return print_item(out, ns);
    }
    let cas = ns
        .accepted_client_ca
        .iter()
        .map(|ca| {
            format!(
                "{} (sha256 {}, until {})",
                ca.subject,
                ca.fingerprint_sha256,
                time(ca.not_after)
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    let replicas = ns
        .replicas
        .iter()
        .map(|r| match r.lag_seconds {
            Some(lag) => format!("{} {} (lag {lag:.1} s)", r.region, r.state),
            None => format!("{} {}", r.region, r.state),
        })
        .collect::<Vec<_>>()
        .join("\n");
    print_pairs(vec![
        ("name", ns.name.clone()),
        ("state", ns.state.to_string()),
        ("region", ns.region.clone()),
        ("active_region", ns.active_region.clone()),
        ("address", ns.endpoint.address.clone()),
        ("cell_address", or_dash(&ns.endpoint.cell_address)),
        ("tls_server_name", ns.endpoint.tls_server_name.clone()),
        ("temporal_namespace", ns.endpoint.temporal_namespace.clone()),
        ("retention_days", ns.retention_days.to_string()),
        ("generated_ca", ns.generated_ca.to_string()),
        ("accepted_client_ca", cas),
        ("replicas", replicas),
        ("created_at", time(ns.created_at)),
        ("updated_at", time(ns.updated_at)),
    ]);
    Ok(())
}

async fn client_cert(
    c: &Client,
    out: Output,
    name: &str,
    common_name: String,
    valid_days: u32,
    out_dir: &Path,
    force: bool,
) -> anyhow::Result<()> {
    let ns = c.namespace(name).await?;
    std::fs::create_dir_all(out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    // Open every file before asking for the certificate: its key is in this one answer only,
    // and must not be lost to a file that cannot be written. Files created here and left
    // unwritten (an error on the way) are removed again.
    let mut key = Target::open(out_dir.join(format!("{}.key", ns.name)), 0o600, force)?;
    let mut cert = Target::open(out_dir.join(format!("{}.pem", ns.name)), 0o644, force)?;
    let mut server_ca = Target::open(
        out_dir.join(format!("{}-server-ca.pem", ns.name)),
        0o644,
        force,
    )?;
    let issued = c
        .create_client_cert(
            &ns.name,
            &CreateClientCert {
                common_name,
                valid_days,
            },
        )
        .await?;
    key.write(&issued.private_key_pem)?;
    cert.write(&issued.certificate_pem)?;
    server_ca.write(&ns.endpoint.server_root_ca_pem)?;
    let (key, cert, server_ca) = (&key.path, &cert.path, &server_ca.path);
    let e = &ns.endpoint;
    match out {
        Output::Json => print_item(
            out,
            &json!({
                "certificate_path": cert,
                "private_key_path": key,
                "server_ca_path": server_ca,
                "fingerprint_sha256": issued.fingerprint_sha256,
                "not_after": issued.not_after,
                "address": e.address,
                "tls_server_name": e.tls_server_name,
                "temporal_namespace": e.temporal_namespace,
            }),
        )?,
        Output::Table => {
            print_pairs(vec![
                ("certificate", cert.display().to_string()),
                ("private_key", key.display().to_string()),
                ("server_ca", server_ca.display().to_string()),
                ("fingerprint_sha256", issued.fingerprint_sha256.clone()),
                ("not_after", time(issued.not_after)),
                ("address", e.address.clone()),
                ("tls_server_name", e.tls_server_name.clone()),
                ("temporal_namespace", e.temporal_namespace.clone()),
            ]);
            eprintln!(
                "The private key is not kept by Tessera: {} is its only copy.",
                key.display()
            );
            if e.address.is_empty() {
                eprintln!(
                    "The namespace is {} and has no address yet: `tessera namespace get {}` shows it once it is placed.",
                    ns.state, ns.name
                );
            }
            eprintln!(
                "Connect with: temporal workflow list --address {} --tls-server-name {} --tls-cert-path {} --tls-key-path {} --tls-ca-path {} --namespace {}",
                if e.address.is_empty() {
                    "<address>".to_string()
                } else {
                    shell_word(&e.address)
                },
                shell_word(&e.tls_server_name),
                shell_word(&cert.display().to_string()),
                shell_word(&key.display().to_string()),
                shell_word(&server_ca.display().to_string()),
                shell_word(&e.temporal_namespace),
            );
        }
    }
    Ok(())
}

/// A file opened before its content is known; removed on drop if this command created it and
/// wrote nothing to it.
struct Target {
    path: PathBuf,
    file: File,
    created: bool,
    written: bool,
}

impl Target {
    fn open(path: PathBuf, mode: u32, force: bool) -> anyhow::Result<Self> {
        let existed = std::fs::symlink_metadata(&path).is_ok();
        if existed && !force {
            bail!(
                "{} already exists: remove it, choose another --out-dir, or pass --force",
                path.display()
            );
        }
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(mode)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        // An existing file keeps its mode on open: set it (a key must not stay readable).
        file.set_permissions(std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("setting the mode of {}", path.display()))?;
        Ok(Self {
            path,
            file,
            created: !existed,
            written: false,
        })
    }

    fn write(&mut self, content: &str) -> anyhow::Result<()> {
        self.file
            .set_len(0)
            .and_then(|()| self.file.write_all(content.as_bytes()))
            .and_then(|()| self.file.sync_all())
            .with_context(|| format!("writing {}", self.path.display()))?;
        self.written = true;
        Ok(())
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        if self.created && !self.written {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn read_pem(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// `s` as one word for a POSIX shell: unchanged when it is safe, else single-quoted.
fn shell_word(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@,+%".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;
    use crate::{Cli, Command};

    fn parse(args: &[&str]) -> Result<NamespaceCmd, clap::Error> {
        let cli = Cli::try_parse_from(std::iter::once("tessera").chain(args.iter().copied()))?;
        match cli.command {
            Command::Namespace(cmd) => Ok(cmd),
            _ => panic!("not a namespace command: {args:?}"),
        }
    }

    #[test]
    fn the_cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn create_needs_exactly_one_client_ca() {
        let cmd = parse(&[
            "namespace",
            "create",
            "orders",
            "--region",
            "local-east",
            "--retention-days",
            "7",
            "--generate-ca",
            "--wait",
        ])
        .unwrap();
        assert!(matches!(
            cmd,
            NamespaceCmd::Create { ref name, ref region, retention_days: 7, ca_file: None, generate_ca: true, wait: true }
                if name == "orders" && region == "local-east"
        ));
        let base = [
            "ns",
            "create",
            "orders",
            "--region",
            "r",
            "--retention-days",
            "7",
        ];
        let neither = parse(&base).err().unwrap();
        assert_eq!(
            neither.kind(),
            clap::error::ErrorKind::MissingRequiredArgument
        );
        let both = [&base[..], &["--ca-file", "ca.pem", "--generate-ca"]].concat();
        assert_eq!(
            parse(&both).err().unwrap().kind(),
            clap::error::ErrorKind::ArgumentConflict
        );
        let file = [&base[..], &["--ca-file", "ca.pem"]].concat();
        assert!(matches!(
            parse(&file).unwrap(),
            NamespaceCmd::Create { ca_file: Some(ref p), generate_ca: false, wait: false, .. }
                if p == Path::new("ca.pem")
        ));
    }

    #[test]
    fn update_needs_a_change() {
        assert!(parse(&["ns", "update", "orders"]).is_err());
        assert!(matches!(
            parse(&["ns", "update", "orders", "--retention-days", "30"]).unwrap(),
            NamespaceCmd::Update {
                retention_days: Some(30),
                ca_file: None,
                wait: false,
                ..
            }
        ));
        assert!(matches!(
            parse(&[
                "namespace",
                "update",
                "orders",
                "--retention-days",
                "30",
                "--ca-file",
                "b.pem",
                "--wait"
            ])
            .unwrap(),
            NamespaceCmd::Update {
                retention_days: Some(30),
                ca_file: Some(_),
                wait: true,
                ..
            }
        ));
    }

    #[test]
    fn client_cert_defaults() {
        let cmd = parse(&["ns", "client-cert", "orders", "--common-name", "worker"]).unwrap();
        assert!(matches!(
            cmd,
            NamespaceCmd::ClientCert { ref name, ref common_name, valid_days: 30, ref out_dir, force: false }
                if name == "orders" && common_name == "worker" && out_dir == Path::new(".")
        ));
        assert!(
            parse(&["ns", "client-cert", "orders"]).is_err(),
            "the common name is required"
        );
    }

    #[test]
    fn get_list_delete() {
        assert!(matches!(
            parse(&["ns", "list"]).unwrap(),
            NamespaceCmd::List
        ));
        assert!(matches!(
            parse(&["namespace", "get", "orders"]).unwrap(),
            NamespaceCmd::Get { ref name } if name == "orders"
        ));
        assert!(matches!(
            parse(&["ns", "delete", "orders", "--wait"]).unwrap(),
            NamespaceCmd::Delete { wait: true, .. }
        ));
    }

    #[test]
    fn shell_words() {
        assert_eq!(shell_word("./certs/orders.pem"), "./certs/orders.pem");
        assert_eq!(shell_word("my certs/o.pem"), "'my certs/o.pem'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
    }
}

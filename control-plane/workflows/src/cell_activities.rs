//! Activities of the cell workflow: provider calls, certificates, desired state, waiting for
//! the agent. Each is idempotent: provisioning converges, destroying what is gone succeeds.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use serde::{Deserialize, Serialize};
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use tessera_api::CellStatus;
use tessera_api::agent::{
    CanaryDoc, DEFAULT_CANARY_INTERVAL_MS, RouteSpec, RouteTargetSpec, RuntimeSpec,
};
use tessera_domain::JoinToken;
use tessera_infra::{CellProvider, CellSpec, ProviderError};
use tessera_store::Store;
use tessera_store::entity::cell;

use crate::certs::{PlatformPki, cell_host, ingress_cert_id};
use crate::errors::{cert_err, final_error, retryable, store_err};

/// The runtime of a ring-0 cell's synthetic canary, and the Temporal namespace it serves.
pub const CANARY_RUNTIME: &str = "canary";
pub const CANARY_NAMESPACE: &str = "canary";

/// How long a join token handed to a provider stays valid.
const JOIN_TOKEN_TTL: chrono::Duration = chrono::Duration::hours(1);
/// An agent whose last report is older than this is not healthy.
pub const REPORT_FRESHNESS: chrono::Duration = chrono::Duration::seconds(20);

/// Providers by the `provider` name a cell records (`local`, …).
pub type Providers = BTreeMap<String, Arc<dyn CellProvider>>;

pub struct CellActivities {
    pub store: Store,
    pub pki: PlatformPki,
    pub providers: Providers,
    /// `https://host:port` of the agent endpoint, handed to agents.
    pub agent_url: String,
    pub base_domain: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CellCondition {
    /// The agent has joined (the cell has an identity).
    Joined,
    /// The agent reports, recently, having applied the newest desired state.
    Healthy,
    /// The agent has applied the newest desired state and runs no runtime.
    Drained,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AwaitCell {
    pub cell_id: String,
    pub until: CellCondition,
    pub timeout_secs: u64,
}

fn provider_err(e: ProviderError) -> ActivityError {
    tracing::warn!(error = %e, retryable = e.is_retryable(), "cell provider call failed");
    if e.is_retryable() {
        retryable(e)
    } else {
        final_error(e.to_string())
    }
}

/// How long a reporting agent may take to apply a new desired state before its cell counts as
/// unhealthy.
const APPLY_GRACE: Duration = Duration::from_secs(8);

/// Waits for the next change of a cell's row, at most until `deadline`, and at most a few
/// seconds (so a waiter also re-checks conditions that move with time, such as freshness).
pub(crate) async fn wait_for_change(
    changes: &mut tokio::sync::watch::Receiver<u64>,
    deadline: tokio::time::Instant,
) {
    let until = deadline.min(tokio::time::Instant::now() + RECHECK);
    let _ = tokio::time::timeout_at(until, changes.changed()).await;
}

/// How often a waiter re-checks its condition with no change of the cell.
pub(crate) const RECHECK: Duration = Duration::from_secs(2);

pub fn reports_recently(c: &cell::Model, now: chrono::DateTime<Utc>) -> bool {
    c.observed_at.is_some_and(|t| now - t <= REPORT_FRESHNESS)
}

/// Whether the agent's last report is recent and covers the newest desired generation.
pub fn is_healthy(c: &cell::Model, now: chrono::DateTime<Utc>) -> bool {
    reports_recently(c, now) && c.observed_generation.is_some_and(|g| g >= c.generation)
}

/// Whether the agent reports a finished decommission: nothing running, nothing kept on disk. A
/// cell that never reported has nothing to drain.
fn is_drained(c: &cell::Model) -> Result<bool, ActivityError> {
    Ok(tessera_store::decode_observed(c)
        .map_err(store_err)?
        .is_none_or(|o| o.drained))
}

/// What one renewal pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenewalReport {
    pub cell_cas: Vec<String>,
    pub ingress_certs: Vec<String>,
    /// Namespace server certificates (by PKI object id).
    pub namespace_certs: Vec<String>,
    /// Cells whose canary certificates were renewed.
    #[serde(default)]
    pub canary_certs: Vec<String>,
    /// Cells whose agents were asked to renew their identity.
    pub identities: Vec<String>,
}

/// The certificates after the leaf of a PEM chain (the leaf's issuer and above).
fn above_leaf(chain_pem: &str) -> &str {
    chain_pem
        .match_indices("-----BEGIN CERTIFICATE-----")
        .nth(1)
        .map_or("", |(i, _)| &chain_pem[i..])
}

impl CellActivities {
    /// Issues (or renews, when due) the canary's certificates and writes its runtime, route and
    /// document into the cell's desired state (bumping `cert_serial` when a certificate was
    /// reissued, like every renewal). Returns whether a certificate was (re)issued.
    async fn write_canary(&self, cell_id: &str) -> Result<bool, ActivityError> {
        let host = PlatformPki::canary_host(cell_id, &self.base_domain);
        let server_id = PlatformPki::canary_server_cert_id(cell_id);
        let client_id = PlatformPki::canary_client_cert_id(cell_id);
        let mut issued = self
            .pki
            .ensure_canary_server_cert(cell_id, &host)
            .await
            .map_err(cert_err)?;
        issued |= self
            .pki
            .ensure_canary_client_cert(cell_id)
            .await
            .map_err(cert_err)?;
        let (_, server_fp) = self
            .pki
            .chain_and_fingerprint(&server_id)
            .await
            .map_err(cert_err)?
            .ok_or_else(|| retryable(anyhow::anyhow!("{server_id} vanished")))?;
        let (client_chain, client_fp) = self
            .pki
            .chain_and_fingerprint(&client_id)
            .await
            .map_err(cert_err)?
            .ok_or_else(|| retryable(anyhow::anyhow!("{client_id} vanished")))?;
        // The route accepts exactly the intermediate that signed the client certificate, so a
        // renewed cell intermediate does not cut the canary off before its certificate renews.
        let accepted_ca_pem = match above_leaf(&client_chain) {
            "" => self.pki.cell_ca(cell_id).await.map_err(cert_err)?.cert_pem,
            above => above.to_string(),
        };
        self.store
            .update_desired(cell_id, None, |d| {
                d.runtimes.insert(
                    CANARY_RUNTIME.into(),
                    RuntimeSpec {
                        temporal_namespace: CANARY_NAMESPACE.into(),
                        // The canary never imports histories: skip the global-namespace bootstrap.
                        global_namespace: false,
                        dynamic_config: Default::default(),
                    },
                );
                d.routes.insert(
                    host.clone(),
                    RouteSpec {
                        accepted_ca_pem: accepted_ca_pem.clone(),
                        target: RouteTargetSpec::Local {
                            runtime: CANARY_RUNTIME.into(),
                        },
                    },
                );
                d.cert_fingerprints
                    .insert(server_id.clone(), server_fp.clone());
                d.cert_fingerprints
                    .insert(client_id.clone(), client_fp.clone());
                d.cert_serial += u64::from(issued);
                let interval_ms = d
                    .canary
                    .as_ref()
                    .map_or(DEFAULT_CANARY_INTERVAL_MS, |c| c.interval_ms);
                d.canary = Some(CanaryDoc {
                    runtime: CANARY_RUNTIME.into(),
                    host: host.clone(),
                    temporal_namespace: CANARY_NAMESPACE.into(),
                    server_cert_id: server_id.clone(),
                    client_cert_id: client_id.clone(),
                    interval_ms,
                });
            })
            .await
            .map_err(store_err)?;
        Ok(issued)
    }
}

#[activities]
impl CellActivities {
    /// Renews what is due on every live cell: its intermediate, its ingress certificate (pushed
    /// through desired state), and asks agents whose identity is due to renew it.
    #[activity]
    pub async fn renew_certificates(
        self: Arc<Self>,
        _ctx: ActivityContext,
    ) -> Result<RenewalReport, ActivityError> {
        let mut report = RenewalReport::default();
        let now = Utc::now();
        let identity_life = self.pki.lifetimes().agent_identity;
        let namespace_certs: Vec<_> = self
            .store
            .list_pki_objects()
            .await
            .map_err(store_err)?
            .into_iter()
            .filter(|o| o.kind == "namespace_server")
            .collect();
        let mut after = None;
        loop {
            let page = self
                .store
                .list_cells(after.clone(), Some(200))
                .await
                .map_err(store_err)?;
            for c in &page.items {
                if matches!(
                    CellStatus::parse(&c.status),
                    Some(CellStatus::Decommissioning | CellStatus::Decommissioned)
                ) {
                    continue;
                }
                if self
                    .pki
                    .renew_cell_ca_if_due(&c.id)
                    .await
                    .map_err(cert_err)?
                {
                    report.cell_cas.push(c.id.clone());
                }
                let hosts = self.pki.ingress_hosts(&c.id).await.map_err(cert_err)?;
                let mut renewed = !hosts.is_empty()
                    && self
                        .pki
                        .ensure_ingress_cert(&c.id, &hosts)
                        .await
                        .map_err(cert_err)?;
                for o in namespace_certs
                    .iter()
                    .filter(|o| o.cell_id.as_deref() == Some(c.id.as_str()))
                {
                    if self
                        .pki
                        .renew_namespace_server_cert_if_due(o)
                        .await
                        .map_err(cert_err)?
                    {
                        report.namespace_certs.push(o.id.clone());
                        renewed = true;
                    }
                }
                let has_canary = tessera_store::decode_desired(&c.id, &c.desired)
                    .map_err(store_err)?
                    .canary
                    .is_some();
                // Renewed canary certificates bump `cert_serial` in the same write.
                if has_canary && self.write_canary(&c.id).await? {
                    report.canary_certs.push(c.id.clone());
                }
                if renewed {
                    report.ingress_certs.push(c.id.clone());
                }
                let identity_due = c
                    .identity_not_after
                    .is_some_and(|na| tessera_pki::renewal_due(na - identity_life, na, now));
                let renewed_ingress = report.ingress_certs.contains(&c.id);
                if identity_due || renewed_ingress {
                    self.store
                        .update_desired(&c.id, None, |d| {
                            d.renew_identity |= identity_due;
                            // A new ingress certificate needs a new generation to reach the agent.
                            d.cert_serial += u64::from(renewed_ingress);
                        })
                        .await
                        .map_err(store_err)?;
                    if identity_due {
                        report.identities.push(c.id.clone());
                    }
                }
            }
            match page.next_after {
                Some(a) => after = Some(a),
                None => break,
            }
        }
        if report != RenewalReport::default() {
            tracing::info!(?report, "certificates renewed");
        }
        Ok(report)
    }

    /// Certificates, desired state, join token, then the provider brings the cell up.
    #[activity]
    pub async fn provision_cell(
        self: Arc<Self>,
        _ctx: ActivityContext,
        cell_id: String,
    ) -> Result<(), ActivityError> {
        let c = self.store.cell(&cell_id).await.map_err(store_err)?;
        let status = CellStatus::parse(&c.status);
        if matches!(
            status,
            Some(CellStatus::Decommissioning | CellStatus::Decommissioned)
        ) {
            return Err(final_error(format!("cell {cell_id} is {}", c.status)));
        }
        self.pki.cell_ca(&cell_id).await.map_err(cert_err)?;
        self.pki
            .ensure_ingress_cert(&cell_id, &[cell_host(&cell_id, &self.base_domain)])
            .await
            .map_err(cert_err)?;
        let cert_id = ingress_cert_id(&cell_id);
        self.store
            .update_desired(&cell_id, None, |d| {
                if !d.server_cert_ids.contains(&cert_id) {
                    d.server_cert_ids.push(cert_id.clone());
                }
            })
            .await
            .map_err(store_err)?;
        if c.provider == "self_hosted" {
            // The customer runs `cell-agent join` with the token they were given.
            self.store
                .set_cell_status(&cell_id, CellStatus::Joining.as_str())
                .await
                .map_err(store_err)?;
            return Ok(());
        }
        let provider = self.providers.get(&c.provider).ok_or_else(|| {
            final_error(format!(
                "no provider for {:?} is configured in this control plane",
                c.provider
            ))
        })?;
        let join_token = if c.identity_fingerprint.is_none() {
            let root = self.pki.root().await.map_err(cert_err)?;
            let der = tessera_pki::certs_from_pem(&root.cert_pem).map_err(retryable)?;
            let token = JoinToken::generate(
                &tessera_pki::fingerprint_sha256(&der[0]),
                Some(&self.agent_url),
            );
            self.store
                .create_join_token(&cell_id, &token.digest(), Utc::now() + JOIN_TOKEN_TTL)
                .await
                .map_err(store_err)?;
            Some(token.expose())
        } else {
            None
        };
        provider
            .provision(&CellSpec {
                cell_id: cell_id.clone(),
                region: c.region_id.clone(),
                ring: c.ring as u32,
                control_plane: self.agent_url.clone(),
                join_token,
                config: c.provider_config.clone(),
            })
            .await
            .map_err(provider_err)?;
        if status == Some(CellStatus::Provisioning) {
            self.store
                .set_cell_status(&cell_id, CellStatus::Joining.as_str())
                .await
                .map_err(store_err)?;
        }
        Ok(())
    }

    /// Polls the store until the condition holds; `false` when `timeout_secs` passed first.
    #[activity]
    pub async fn await_cell(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: AwaitCell,
    ) -> Result<bool, ActivityError> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(input.timeout_secs);
        let mut changes = self.store.cell_changes(&input.cell_id);
        loop {
            let c = self.store.cell(&input.cell_id).await.map_err(store_err)?;
            let done = match input.until {
                CellCondition::Joined => c.identity_fingerprint.is_some(),
                CellCondition::Healthy => is_healthy(&c, Utc::now()),
                CellCondition::Drained => {
                    c.observed_generation.is_some_and(|g| g >= c.generation) && is_drained(&c)?
                }
            };
            if done {
                return Ok(true);
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(false);
            }
            let _ = ctx.record_heartbeat(()).await;
            wait_for_change(&mut changes, deadline).await;
        }
    }

    #[activity]
    pub async fn set_cell_status(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: (String, CellStatus),
    ) -> Result<(), ActivityError> {
        self.store
            .set_cell_status(&input.0, input.1.as_str())
            .await
            .map_err(store_err)?;
        Ok(())
    }

    /// Marks a running cell healthy or unhealthy from the freshness of its agent's reports.
    #[activity]
    pub async fn check_cell_health(
        self: Arc<Self>,
        _ctx: ActivityContext,
        cell_id: String,
    ) -> Result<CellStatus, ActivityError> {
        let c = self.store.cell(&cell_id).await.map_err(store_err)?;
        let current = CellStatus::parse(&c.status).unwrap_or(CellStatus::Unhealthy);
        if !matches!(current, CellStatus::Healthy | CellStatus::Unhealthy) {
            return Ok(current);
        }
        // An agent that reports but has not applied the newest desired state yet is given a
        // moment: under a stream of changes a check often lands between a write and the
        // agent's next report. Lagging for longer, or silent, is unhealthy.
        let mut c = c;
        let deadline = tokio::time::Instant::now() + APPLY_GRACE;
        let mut changes = self.store.cell_changes(&cell_id);
        while !is_healthy(&c, Utc::now())
            && reports_recently(&c, Utc::now())
            && tokio::time::Instant::now() < deadline
        {
            wait_for_change(&mut changes, deadline).await;
            c = self.store.cell(&cell_id).await.map_err(store_err)?;
        }
        let next = if is_healthy(&c, Utc::now()) {
            CellStatus::Healthy
        } else {
            CellStatus::Unhealthy
        };
        if next != current {
            tracing::warn!(cell = %cell_id, from = %current, to = %next, "cell health changed");
            self.store
                .set_cell_status(&cell_id, next.as_str())
                .await
                .map_err(store_err)?;
        }
        Ok(next)
    }

    /// Writes the release the cell should run into its desired state.
    #[activity]
    pub async fn set_cell_release(
        self: Arc<Self>,
        _ctx: ActivityContext,
        (cell_id, apply): (String, crate::cells::ApplyRelease),
    ) -> Result<(), ActivityError> {
        let version = apply.release.as_ref().map(|r| r.version.clone());
        tracing::info!(cell = %cell_id, release = ?version, rollout = %apply.rollout, "applying a release");
        self.store
            .update_desired(&cell_id, None, |d| d.release = apply.release.clone())
            .await
            .map_err(store_err)?;
        Ok(())
    }

    /// Empties the cell's desired state (no runtime, no route) and marks it decommissioned, so
    /// the agent stops everything, its warm runtimes and spare stores too.
    #[activity]
    pub async fn clear_cell_desired(
        self: Arc<Self>,
        _ctx: ActivityContext,
        cell_id: String,
    ) -> Result<(), ActivityError> {
        self.store
            .update_desired(&cell_id, None, |d| {
                d.runtimes.clear();
                d.routes.clear();
                d.canary = None;
                d.decommission = true;
            })
            .await
            .map_err(store_err)?;
        Ok(())
    }

    /// Gives a ring-0 cell its synthetic canary (certificates, runtime, route, canary document)
    /// and takes it away from a cell of any other ring. Idempotent: unchanged desired state
    /// gets no new generation. A cell that is not running (failed, decommissioning…) is left
    /// alone. Returns whether the cell runs a canary.
    #[activity]
    pub async fn ensure_canary(
        self: Arc<Self>,
        _ctx: ActivityContext,
        cell_id: String,
    ) -> Result<bool, ActivityError> {
        let c = self.store.cell(&cell_id).await.map_err(store_err)?;
        if !matches!(
            CellStatus::parse(&c.status),
            Some(CellStatus::Healthy | CellStatus::Unhealthy)
        ) {
            return Ok(false);
        }
        if c.ring != 0 {
            let server = PlatformPki::canary_server_cert_id(&cell_id);
            let client = PlatformPki::canary_client_cert_id(&cell_id);
            self.store
                .update_desired(&cell_id, None, |d| {
                    if let Some(canary) = d.canary.take() {
                        d.runtimes.remove(&canary.runtime);
                        d.routes.remove(&canary.host);
                        d.cert_fingerprints.remove(&server);
                        d.cert_fingerprints.remove(&client);
                    }
                })
                .await
                .map_err(store_err)?;
            return Ok(false);
        }
        self.write_canary(&cell_id).await?;
        Ok(true)
    }

    #[activity]
    pub async fn destroy_cell(
        self: Arc<Self>,
        _ctx: ActivityContext,
        cell_id: String,
    ) -> Result<(), ActivityError> {
        let c = self.store.cell(&cell_id).await.map_err(store_err)?;
        if c.provider == "self_hosted" {
            return Ok(()); // the hosts are the customer's; revoking the identity cuts them off
        }
        let provider = self.providers.get(&c.provider).ok_or_else(|| {
            final_error(format!("no provider for {:?} is configured", c.provider))
        })?;
        provider.destroy(&cell_id).await.map_err(provider_err)
    }

    /// Revokes the cell's identity and certificates, and records it as decommissioned.
    #[activity]
    pub async fn forget_cell(
        self: Arc<Self>,
        _ctx: ActivityContext,
        cell_id: String,
    ) -> Result<(), ActivityError> {
        self.store
            .revoke_cell_identity(&cell_id)
            .await
            .map_err(store_err)?;
        self.store
            .delete_pki_objects_of_cell(&cell_id)
            .await
            .map_err(store_err)?;
        self.store
            .set_cell_status(&cell_id, CellStatus::Decommissioned.as_str())
            .await
            .map_err(store_err)?;
        Ok(())
    }
}

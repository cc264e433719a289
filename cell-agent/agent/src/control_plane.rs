//! The agent's side of the agent endpoint: long-poll desired state, push observed state, renew.

use std::time::Duration;

use reqwest::StatusCode;
use tessera_api::agent::{
    AGENT_PREFIX, DESIRED_SCHEMA_VERSION, DesiredState, LONG_POLL_SECONDS, ObservedState,
    RenewRequest, ReplicaCredentials, ReplicaCredentialsRequest,
};

use tessera_api::edge::{EDGE_SCHEMA_VERSION, EdgeObserved, EdgeRoutes};

use crate::error::{AgentError, Context};
use crate::identity::Identity;

/// A desired state this agent can apply whole, or why not.
fn understood(body: &[u8]) -> crate::Result<DesiredState> {
    let d: DesiredState =
        serde_json::from_slice(body).map_err(|e| AgentError::Unsupported(e.to_string()))?;
    if d.schema_version > DESIRED_SCHEMA_VERSION {
        return Err(AgentError::Unsupported(format!(
            "generation {} has schema version {}; this agent understands up to {DESIRED_SCHEMA_VERSION}",
            d.generation, d.schema_version
        )));
    }
    Ok(d)
}

/// The identity refusal in the endpoint's error body
/// (`{"error": {"message", "details": {"cell_status"}}}`).
fn identity_refused(body: &str) -> AgentError {
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    let error = &v["error"];
    AgentError::IdentityRefused {
        message: error["message"].as_str().unwrap_or(body).to_string(),
        decommissioned: error["details"]["cell_status"] == "decommissioned",
    }
}

#[derive(Clone)]
pub struct ControlPlane {
    http: reqwest::Client,
    base: String,
}

impl ControlPlane {
    pub fn new(identity: &Identity) -> crate::Result<Self> {
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(identity.client_tls()?)
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(LONG_POLL_SECONDS + 10))
            .build()?;
        Ok(Self {
            http,
            base: format!("{}{AGENT_PREFIX}", identity.membership.control_plane),
        })
    }

    /// The next desired state newer than `after`, or `None` when the long poll timed out.
    pub async fn desired(&self, after: u64) -> crate::Result<Option<DesiredState>> {
        match self.long_poll("desired", after, "desired state").await? {
            Some(body) => understood(&body).map(Some),
            None => Ok(None),
        }
    }

    /// The edge's routes if newer than `after`, or `None` when the long poll timed out.
    pub async fn edge_routes(&self, after: u64) -> crate::Result<Option<EdgeRoutes>> {
        let Some(body) = self.long_poll("edge/routes", after, "edge routes").await? else {
            return Ok(None);
        };
        let routes: EdgeRoutes =
            serde_json::from_slice(&body).map_err(|e| AgentError::Unsupported(e.to_string()))?;
        if routes.schema_version > EDGE_SCHEMA_VERSION {
            return Err(AgentError::Unsupported(format!(
                "routes of generation {} have schema version {}; this edge understands up to {EDGE_SCHEMA_VERSION}",
                routes.generation, routes.schema_version
            )));
        }
        Ok(Some(routes))
    }

    async fn long_poll(
        &self,
        path: &str,
        after: u64,
        what: &'static str,
    ) -> crate::Result<Option<bytes::Bytes>> {
        let resp = self
            .http
            .get(format!("{}/{path}?after_generation={after}", self.base))
            .send()
            .await?;
        match resp.status() {
            StatusCode::OK => Ok(Some(resp.bytes().await?)),
            StatusCode::NO_CONTENT => Ok(None),
            StatusCode::UNAUTHORIZED => {
                Err(identity_refused(&resp.text().await.unwrap_or_default()))
            }
            s => Err(AgentError::ControlPlane {
                what,
                status: s.as_u16(),
                body: resp.text().await.unwrap_or_default(),
            }),
        }
    }

    pub async fn report_edge(&self, observed: &EdgeObserved) -> crate::Result<()> {
        self.post_report("edge/observed", observed).await
    }

    pub async fn report(&self, observed: &ObservedState) -> crate::Result<()> {
        self.post_report("observed", observed).await
    }

    async fn post_report<T: serde::Serialize>(
        &self,
        path: &str,
        observed: &T,
    ) -> crate::Result<()> {
        let resp = self
            .http
            .post(format!("{}/{path}", self.base))
            .timeout(Duration::from_secs(10))
            .json(observed)
            .send()
            .await?;
        crate::error::ensure!(
            resp.status().is_success(),
            "observed state refused: {}",
            resp.status()
        );
        Ok(())
    }

    /// Credentials for the replica this cell's desired state names for `runtime`.
    pub async fn replica_credentials(&self, runtime: &str) -> crate::Result<ReplicaCredentials> {
        let resp = self
            .http
            .post(format!("{}/replica-credentials", self.base))
            .timeout(Duration::from_secs(30))
            .json(&ReplicaCredentialsRequest {
                runtime: runtime.to_string(),
            })
            .send()
            .await
            .context("asking for replica credentials")?;
        let status = resp.status();
        if !status.is_success() {
            return Err(AgentError::ControlPlane {
                what: "replica credentials",
                status: status.as_u16(),
                body: resp.text().await.unwrap_or_default(),
            });
        }
        Ok(resp.json().await?)
    }

    /// A new identity certificate for a fresh key; returns `(chain_pem, key_pem)`.
    pub async fn renew(&self) -> crate::Result<(String, String)> {
        self.renewal("renew", "cell-agent").await
    }

    /// The same for an edge.
    pub async fn renew_edge(&self) -> crate::Result<(String, String)> {
        self.renewal("edge/renew", "tessera-edge").await
    }

    async fn renewal(&self, path: &str, common_name: &str) -> crate::Result<(String, String)> {
        /// What both renewal answers carry.
        #[derive(serde::Deserialize)]
        struct Issued {
            certificate_chain_pem: String,
        }
        let (csr_pem, key_pem) = tessera_pki::generate_csr(common_name)?;
        let resp = self
            .http
            .post(format!("{}/{path}", self.base))
            .timeout(Duration::from_secs(10))
            .json(&RenewRequest { csr_pem })
            .send()
            .await
            .context("renewing the identity certificate")?;
        crate::error::ensure!(
            resp.status().is_success(),
            "renewal refused: {}",
            resp.status()
        );
        let r: Issued = resp.json().await?;
        Ok((r.certificate_chain_pem, key_pem))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(body: &str) -> (String, bool) {
        match identity_refused(body) {
            AgentError::IdentityRefused {
                message,
                decommissioned,
            } => (message, decommissioned),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_desired_state_from_a_newer_control_plane_is_not_applied() {
        let current = serde_json::json!({"cell_id": "c", "generation": 4, "runtimes": {},
            "routes": {}, "server_certs": []});
        assert_eq!(
            understood(current.to_string().as_bytes())
                .unwrap()
                .generation,
            4
        );
        let mut newer = current.clone();
        newer["schema_version"] = (DESIRED_SCHEMA_VERSION + 1).into();
        let mut unknown = current.clone();
        unknown["placement_epochs"] = serde_json::json!({"ns-1": 2});
        for doc in [newer, unknown] {
            assert!(
                matches!(
                    understood(doc.to_string().as_bytes()),
                    Err(AgentError::Unsupported(_))
                ),
                "{doc}"
            );
        }
    }

    #[test]
    fn a_refusal_says_whether_the_cell_was_decommissioned() {
        let (message, gone) = refusal(
            r#"{"error":{"code":"unauthenticated","message":"the cell is decommissioned","details":{"cell_status":"decommissioned"}}}"#,
        );
        assert!(gone);
        assert_eq!(message, "the cell is decommissioned");
        let (_, replaced) = refusal(
            r#"{"error":{"code":"unauthenticated","message":"this certificate is no longer the cell's identity","details":{}}}"#,
        );
        assert!(!replaced);
        assert!(!refusal("bad gateway").1);
    }
}

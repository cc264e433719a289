//! The agent's side of the agent endpoint: long-poll desired state, push observed state, renew.

use std::time::Duration;

use reqwest::StatusCode;
use tessera_api::agent::{
    AGENT_PREFIX, DesiredState, JoinResponse, LONG_POLL_SECONDS, ObservedState, RenewRequest,
};

use crate::error::{AgentError, Context};
use crate::identity::Identity;

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
        let resp = self
            .http
            .get(format!("{}/desired?after_generation={after}", self.base))
            .send()
            .await?;
        match resp.status() {
            StatusCode::OK => Ok(Some(resp.json().await?)),
            StatusCode::NO_CONTENT => Ok(None),
            StatusCode::UNAUTHORIZED => {
                Err(identity_refused(&resp.text().await.unwrap_or_default()))
            }
            s => Err(AgentError::ControlPlane {
                what: "desired state",
                status: s.as_u16(),
                body: resp.text().await.unwrap_or_default(),
            }),
        }
    }

    pub async fn report(&self, observed: &ObservedState) -> crate::Result<()> {
        let resp = self
            .http
            .post(format!("{}/observed", self.base))
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

    /// A new identity certificate for a fresh key; returns `(chain_pem, key_pem)`.
    pub async fn renew(&self) -> crate::Result<(String, String)> {
        let (csr_pem, key_pem) = tessera_pki::generate_csr("cell-agent")?;
        let resp = self
            .http
            .post(format!("{}/renew", self.base))
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
        let r: JoinResponse = resp.json().await?;
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

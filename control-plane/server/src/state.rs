//! Shared state of the API server.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use chrono::Utc;
use tessera_store::{NewAuditEntry, Store};
use uuid::Uuid;

use crate::auth::Caller;
use crate::config::Config;
use crate::error::ApiResult;
use crate::metrics::Metrics;
use crate::ratelimit::RateLimiter;
use crate::secrets::MasterKey;
use crate::workflows::Engine;

pub type SharedState = Arc<AppState>;

pub struct AppState {
    pub config: Config,
    pub store: Store,
    pub master_key: MasterKey,
    /// SHA-256 of the platform-admin token.
    pub admin_token_digest: String,
    pub limiter: RateLimiter,
    /// Failed authentications per source address (see [`crate::auth::authenticate`]).
    pub auth_failures: RateLimiter,
    pub metrics: Metrics,
    /// Starts and awaits control workflows; `None` only in router tests that need none.
    pub engine: Option<Engine>,
    /// The control plane's certificate authority.
    pub pki: tessera_platform_pki::PlatformPki,
    /// `https://host:port` of the agent endpoint as bound.
    pub agent_url: Mutex<String>,
    /// Each region's object store (`--object-stores`).
    pub object_stores: tessera_object_store::ObjectStores,
    /// Issues cells' credentials for replicas in buckets.
    pub replica_issuer: tessera_object_store::Issuer,
    /// `(scope, key)` of idempotent requests being executed right now.
    pub idempotency_inflight: Mutex<HashSet<(String, String)>>,
}

impl AppState {
    pub fn agent_url(&self) -> String {
        self.agent_url.lock().expect("agent url lock").clone()
    }

    pub fn engine(&self) -> ApiResult<&Engine> {
        self.engine.as_ref().ok_or_else(|| {
            crate::error::ApiError::unavailable("the workflow engine is not running")
        })
    }

    /// Records a mutation in the audit log: who, what, when, from where.
    pub async fn audit(
        &self,
        caller: &Caller,
        account_id: Option<Uuid>,
        action: &str,
        resource: String,
        details: serde_json::Value,
    ) -> ApiResult<()> {
        let (kind, actor_id, actor_name, api_key_id) = caller.principal.actor();
        self.store
            .append_audit(NewAuditEntry {
                id: Uuid::now_v7(),
                account_id,
                at: Utc::now(),
                actor_kind: kind.as_str().into(),
                actor_id,
                actor_name,
                api_key_id,
                action: action.into(),
                resource,
                source_ip: caller.source_ip.clone(),
                details,
            })
            .await?;
        Ok(())
    }
}

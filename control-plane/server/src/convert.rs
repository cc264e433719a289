//! Store rows to wire types.

use tessera_api as api;
use tessera_store::AccountUsage;
use tessera_store::entity::{
    account, api_key, audit_entry, namespace, operation, release, service_account, user,
};

use crate::auth::parse_role;
use crate::error::{ApiError, ApiResult};

pub fn account(a: account::Model, usage: AccountUsage) -> api::Account {
    api::Account {
        id: a.id,
        name: a.name,
        slug: a.slug,
        quotas: api::Quotas {
            max_namespaces: a.max_namespaces as u32,
            max_users: a.max_users as u32,
            max_service_accounts: a.max_service_accounts as u32,
            max_api_keys: a.max_api_keys as u32,
        },
        usage: api::Usage {
            namespaces: usage.namespaces as u32,
            users: usage.users as u32,
            service_accounts: usage.service_accounts as u32,
            api_keys: usage.active_api_keys as u32,
        },
        created_at: a.created_at,
    }
}

pub fn user(u: user::Model) -> ApiResult<api::User> {
    Ok(api::User {
        id: u.id,
        account_id: u.account_id,
        role: parse_role(&u.role)?,
        state: if u.state == "invited" {
            api::UserState::Invited
        } else {
            api::UserState::Active
        },
        email: u.email,
        created_at: u.created_at,
    })
}

pub fn service_account(s: service_account::Model) -> ApiResult<api::ServiceAccount> {
    Ok(api::ServiceAccount {
        id: s.id,
        account_id: s.account_id,
        role: parse_role(&s.role)?,
        namespace_access: serde_json::from_value(s.namespace_access).unwrap_or_default(),
        name: s.name,
        created_at: s.created_at,
    })
}

pub fn api_key(k: api_key::Model) -> api::ApiKey {
    api::ApiKey {
        id: k.id,
        name: k.name,
        owner: api::ApiKeyOwner {
            user_id: k.user_id,
            service_account_id: k.service_account_id,
        },
        expires_at: k.expires_at,
        created_at: k.created_at,
        revoked_at: k.revoked_at,
    }
}

pub fn operation(o: operation::Model) -> api::Operation {
    let state = api::OperationState::parse(&o.state).unwrap_or(api::OperationState::Pending);
    api::Operation {
        id: o.id,
        kind: o.kind,
        state,
        progress: o.progress,
        step: o.step,
        resource: api::ResourceRef {
            kind: o.resource_kind,
            id: o.resource_id,
        },
        error: o.error_code.map(|code| api::ErrorDetail {
            code: serde_json::from_value(serde_json::Value::String(code))
                .unwrap_or(api::ErrorCode::Internal),
            message: o.error_message.unwrap_or_default(),
            details: serde_json::json!({}),
        }),
        created_at: o.created_at,
        updated_at: o.updated_at,
    }
}

pub fn audit_entry(e: audit_entry::Model) -> api::AuditEntry {
    api::AuditEntry {
        id: e.id,
        at: e.at,
        actor: api::Actor {
            kind: api::ActorKind::parse(&e.actor_kind).unwrap_or(api::ActorKind::System),
            id: e.actor_id,
            name: e.actor_name,
            api_key_id: e.api_key_id,
        },
        action: e.action,
        resource: e.resource,
        source_ip: e.source_ip,
        details: e.details,
    }
}

pub fn region(r: tessera_store::entity::region::Model, available: bool) -> api::Region {
    api::Region {
        cloud: api::Cloud::parse(&r.cloud).unwrap_or(api::Cloud::Local),
        id: r.id,
        location: r.location,
        status: if available {
            "available"
        } else {
            "unavailable"
        }
        .into(),
        self_hosted: r.owner_account_id.is_some(),
        owner_account_id: r.owner_account_id,
        created_at: r.created_at,
    }
}

/// A cell; `detail` adds the agent's last report.
pub fn cell(c: tessera_store::entity::cell::Model, detail: bool) -> api::Cell {
    api::Cell {
        status: api::CellStatus::parse(&c.status).unwrap_or(api::CellStatus::Failed),
        ring: c.ring.max(0) as u32,
        provider: c.provider,
        ingress_address: c.ingress_address,
        desired_generation: c.generation.max(0) as u64,
        observed_generation: c.observed_generation.map(|g| g.max(0) as u64),
        last_report_at: c.observed_at,
        labels: serde_json::from_value(c.labels).unwrap_or_default(),
        created_at: c.created_at,
        updated_at: c.updated_at,
        observed: if detail {
            c.observed.and_then(|o| serde_json::from_value(o).ok())
        } else {
            None
        },
        id: c.id,
        region: c.region_id,
    }
}

/// Where a namespace's clients connect: the edge (stable), and its cell's ingress (pinned).
pub struct Addresses {
    pub edge: String,
    pub cell: String,
}

/// A namespace with its endpoint; `root_pem` is the platform root.
pub fn namespace(ns: namespace::Model, addresses: Addresses, root_pem: String) -> api::Namespace {
    let state = api::NamespaceState::parse(&ns.state).unwrap_or(api::NamespaceState::Failed);
    api::Namespace {
        accepted_client_ca: tessera_pki::inspect_bundle(&ns.accepted_ca_pem)
            .into_iter()
            .map(|c| api::AcceptedCa {
                fingerprint_sha256: c.fingerprint_sha256,
                subject: c.subject,
                not_after: c.not_after,
                pem: c.pem,
            })
            .collect(),
        endpoint: api::Endpoint {
            address: addresses.edge,
            cell_address: addresses.cell,
            tls_server_name: ns.host,
            temporal_namespace: ns.temporal_namespace,
            server_root_ca_pem: root_pem,
        },
        name: ns.name,
        account_id: ns.account_id,
        active_region: ns.region_id.clone(),
        region: ns.region_id,
        state,
        retention_days: ns.retention_days.max(0) as u32,
        generated_ca: ns.generated_ca,
        replicas: Vec::new(),
        migration: None,
        created_at: ns.created_at,
        updated_at: ns.updated_at,
    }
}

pub fn replica(r: tessera_store::entity::replica::Model) -> api::Replica {
    api::Replica {
        region: r.region_id,
        cell: r.cell_id,
        state: r.state,
        lag_seconds: r.lag_seconds,
        last_applied_at: r.last_applied_at,
        error: r.error,
    }
}

/// A stored release; its JSON columns were written from the same wire types.
pub fn release(r: release::Model) -> ApiResult<api::Release> {
    Ok(api::Release {
        runtime: serde_json::from_value(r.runtime).map_err(ApiError::internal)?,
        agent: serde_json::from_value(r.agent).map_err(ApiError::internal)?,
        version: r.version,
        notes: r.notes,
        created_at: r.created_at,
    })
}

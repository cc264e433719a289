//! Namespaces: create, read, update, delete, and client certificates from a generated CA.
//!
//! Every change is checked here (so bad input changes nothing) and then handed to the
//! namespace's entity workflow, which answers with an operation to follow.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{Duration, Utc};
use serde_json::json;
use tessera_api::{
    ClientCert, CreateClientCert, CreateNamespace, ErrorBody, Namespace, NamespaceOperation,
    NamespaceState, Page, PageQuery, UpdateNamespace,
};
use tessera_domain::{Action, NamespaceAction, validate};
use tessera_pki::Usage;
use tessera_store::entity::namespace;
use tessera_store::{NewNamespace, NewOperation, StoreError};
use tessera_workflows::NamespaceRequest;
use tessera_workflows::namespace_activities::place_in;
use tessera_workflows::namespaces::workflow_id;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::auth::Member;
use crate::convert;
use crate::error::{ApiError, ApiResult};
use crate::json::{Json, Query};
use crate::routes::page_params;
use crate::state::SharedState;

pub fn routes() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new()
        .routes(routes!(list_namespaces, create_namespace))
        .routes(routes!(get_namespace, update_namespace, delete_namespace))
        .routes(routes!(create_client_cert))
        .routes(routes!(move_namespace))
        .routes(routes!(abort_move))
}

/// Longest validity of a client certificate issued by a generated CA.
const MAX_CLIENT_CERT_DAYS: u32 = 365;

/// 202: the operation that changes the namespace, and the namespace as it is now.
pub(super) async fn accepted(
    st: &SharedState,
    ns: namespace::Model,
    operation: tessera_api::Operation,
) -> ApiResult<(StatusCode, Json<NamespaceOperation>)> {
    Ok((
        StatusCode::ACCEPTED,
        Json(NamespaceOperation {
            operation,
            namespace: view(st, ns, &server_root(st).await?).await?,
        }),
    ))
}

/// The namespace as the API shows it: with its endpoint (the edge, and the ingress of its cell).
pub(super) async fn view(
    st: &SharedState,
    ns: namespace::Model,
    root_pem: &str,
) -> ApiResult<Namespace> {
    let cell_address = match &ns.cell_id {
        Some(cell) => match st.store.cell(cell).await {
            Ok(c) => c.ingress_address.unwrap_or_default(),
            Err(StoreError::NotFound(_)) => String::new(),
            Err(e) => return Err(e.into()),
        },
        None => String::new(),
    };
    let migration = match st.store.running_migration(ns.id).await? {
        Some(m) => {
            let progress: tessera_api::MigrationProgress =
                serde_json::from_value(m.progress).unwrap_or_default();
            let target_region = match st.store.cell(&m.target_cell).await {
                Ok(c) => c.region_id,
                Err(StoreError::NotFound(_)) => String::new(),
                Err(e) => return Err(e.into()),
            };
            Some(tessera_api::NamespaceMigration {
                id: m.id,
                state: tessera_api::MigrationState::parse(&m.state)
                    .unwrap_or(tessera_api::MigrationState::Started),
                target_region,
                lag_seconds: progress.lag_seconds,
            })
        }
        None => None,
    };
    let address = st.config.edge_addr.clone();
    let view_id = ns.id;
    let mut view = convert::namespace(
        ns,
        convert::Addresses {
            edge: address,
            cell: cell_address,
        },
        root_pem.to_string(),
    );
    view.migration = migration;
    view.replicas = st
        .store
        .replicas_of(view_id)
        .await?
        .into_iter()
        .map(convert::replica)
        .collect();
    Ok(view)
}

/// A region the account may place namespaces in; another account's self-hosted region is as
/// unknown as one that does not exist.
pub(super) async fn region_of(
    st: &SharedState,
    account: Uuid,
    id: &str,
) -> ApiResult<tessera_store::entity::region::Model> {
    st.store.region_for(account, id).await.map_err(|e| match e {
        StoreError::NotFound(_) => ApiError::invalid("region", format!("unknown region {id:?}")),
        e => e.into(),
    })
}

/// The CA that signs every namespace endpoint's server certificate.
pub(super) async fn server_root(st: &SharedState) -> ApiResult<String> {
    st.pki.root_pem().await.map_err(ApiError::internal)
}

fn check_bundle(pem: &str) -> ApiResult<()> {
    tessera_pki::parse_ca_bundle(pem, Utc::now())
        .map(|_| ())
        .map_err(|e| ApiError::invalid("accepted_client_ca", e.to_string()))
}

/// Undoes a namespace whose workflow could not be started (deleted as of `deleted_at` again,
/// its operation failed), so that the request can simply be retried.
pub(super) async fn not_started(
    st: &SharedState,
    id: Uuid,
    op: Uuid,
    deleted_at: chrono::DateTime<Utc>,
    e: impl std::fmt::Display,
) -> ApiError {
    let undone = async {
        st.store.mark_namespace_deleted(id, deleted_at).await?;
        st.store
            .update_operation(
                op,
                tessera_store::OperationUpdate {
                    state: "failed".into(),
                    progress: 0.0,
                    step: None,
                    error_code: Some("unavailable".into()),
                    error_message: Some(e.to_string()),
                },
            )
            .await
    };
    match undone.await {
        Ok(_) => ApiError::unavailable(format!("could not start the namespace workflow: {e}")),
        Err(store) => store.into(),
    }
}

fn already_exists(name: &str) -> ApiError {
    ApiError::already_exists(format!("namespace {name} already exists"))
}

#[utoipa::path(get, path = "/namespaces", tag = "namespaces", params(PageQuery), security(("api_key" = [])),
    responses((status = 200, body = Page<Namespace>), (status = 401, body = ErrorBody)))]
async fn list_namespaces(
    State(st): State<SharedState>,
    m: Member,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<Page<Namespace>>> {
    m.authorize(Action::Read)?;
    let (after, size) = page_params(&q)?;
    let p = st.store.list_namespaces(m.account_id, after, size).await?;
    let root = server_root(&st).await?;
    let mut items = Vec::with_capacity(p.items.len());
    for ns in p.items {
        items.push(view(&st, ns, &root).await?);
    }
    Ok(Json(Page {
        items,
        next_page_token: p.next_after.map(|id| id.to_string()),
    }))
}

/// Create a namespace in a region → 202 with the operation that provisions it.
#[utoipa::path(post, path = "/namespaces", tag = "namespaces", request_body = CreateNamespace, security(("api_key" = [])),
    responses((status = 202, body = NamespaceOperation), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
async fn create_namespace(
    State(st): State<SharedState>,
    m: Member,
    Json(req): Json<CreateNamespace>,
) -> ApiResult<(StatusCode, Json<NamespaceOperation>)> {
    m.authorize(Action::CreateNamespace)?;
    validate::namespace_name(&req.name)?;
    validate::retention_days(req.retention_days)?;
    let generate = req.generate_ca.unwrap_or(false);
    let bundle = match (&req.accepted_client_ca, generate) {
        (Some(_), true) => {
            return Err(ApiError::invalid(
                "accepted_client_ca",
                "give either accepted_client_ca or generate_ca: true, not both",
            ));
        }
        (None, false) => {
            return Err(ApiError::invalid(
                "accepted_client_ca",
                "give a PEM bundle of CA certificates, or generate_ca: true",
            ));
        }
        (Some(pem), false) => {
            check_bundle(pem)?;
            pem.trim().to_string() + "\n"
        }
        (None, true) => String::new(),
    };
    let region = region_of(&st, m.account_id, &req.region).await?;
    match st.store.namespace(m.account_id, &req.name).await {
        Ok(_) => return Err(already_exists(&req.name)),
        Err(StoreError::NotFound(_)) => {}
        Err(e) => return Err(e.into()),
    }
    let account = st.store.account(m.account_id).await?;
    // The store checks the quota again, atomically; this answers early and clearly.
    if st.store.count_namespaces(m.account_id).await? >= account.max_namespaces.max(0) as u64 {
        return Err(StoreError::Quota {
            what: "namespaces",
            limit: i64::from(account.max_namespaces),
        }
        .into());
    }
    // Refuse at once what the workflow could not place; it places again for real.
    place_in(&st.store, &region.id, None)
        .await?
        .map_err(ApiError::precondition)?;
    let engine = st.engine()?;
    let now = Utc::now();
    let id = Uuid::now_v7();
    let temporal_namespace = format!("{}.{}", req.name, account.slug);
    let (ns, op) = st
        .store
        .create_namespace(
            NewNamespace {
                id,
                account_id: m.account_id,
                name: req.name.clone(),
                region_id: region.id.clone(),
                retention_days: req.retention_days as i32,
                accepted_ca_pem: bundle,
                generated_ca: generate,
                host: format!("{temporal_namespace}.{}", st.config.base_domain),
                temporal_namespace,
                created_at: now,
            },
            NewOperation {
                id: Uuid::now_v7(),
                account_id: Some(m.account_id),
                kind: "namespace.create".into(),
                resource_kind: "namespace".into(),
                resource_id: id.to_string(),
                workflow_id: workflow_id(id),
                created_at: now,
            },
        )
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => already_exists(&req.name),
            e => e.into(),
        })?;
    if let Err(e) = engine.start_namespace(id, Some(op.id)).await {
        // Nothing will drive it: take it back so the request can simply be retried.
        return Err(not_started(&st, id, op.id, Utc::now(), e).await);
    }
    st.audit(
        &m.caller,
        Some(m.account_id),
        "namespace.create",
        format!("namespace/{}", ns.name),
        json!({
            "region": ns.region_id,
            "retention_days": ns.retention_days,
            "generate_ca": generate,
            "operation_id": op.id,
        }),
    )
    .await?;
    accepted(&st, ns, convert::operation(op)).await
}

#[utoipa::path(get, path = "/namespaces/{name}", tag = "namespaces", params(("name" = String, Path)), security(("api_key" = [])),
    responses((status = 200, body = Namespace), (status = 404, body = ErrorBody)))]
async fn get_namespace(
    State(st): State<SharedState>,
    m: Member,
    Path(name): Path<String>,
) -> ApiResult<Json<Namespace>> {
    m.authorize_namespace(&name, NamespaceAction::Read)?;
    let ns = st.store.namespace(m.account_id, &name).await?;
    Ok(Json(view(&st, ns, &server_root(&st).await?).await?))
}

/// Records the operation of a request and hands the request to the namespace's workflow.
pub(super) async fn submit(
    st: &SharedState,
    m: &Member,
    ns: &namespace::Model,
    kind: &str,
    request: impl FnOnce(Uuid) -> NamespaceRequest,
) -> ApiResult<tessera_store::entity::operation::Model> {
    let engine = st.engine()?;
    let op = st
        .store
        .create_operation(NewOperation {
            id: Uuid::now_v7(),
            account_id: Some(m.account_id),
            kind: kind.into(),
            resource_kind: "namespace".into(),
            resource_id: ns.id.to_string(),
            workflow_id: workflow_id(ns.id),
            created_at: Utc::now(),
        })
        .await?;
    engine
        .namespace_request(ns.id, request(op.id))
        .await
        .map_err(ApiError::internal)?;
    Ok(op)
}

/// Change the retention or the accepted CA bundle → 202. A new bundle replaces the old one.
#[utoipa::path(patch, path = "/namespaces/{name}", tag = "namespaces", params(("name" = String, Path)),
    request_body = UpdateNamespace, security(("api_key" = [])),
    responses((status = 202, body = NamespaceOperation), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
async fn update_namespace(
    State(st): State<SharedState>,
    m: Member,
    Path(name): Path<String>,
    Json(req): Json<UpdateNamespace>,
) -> ApiResult<(StatusCode, Json<NamespaceOperation>)> {
    m.authorize_namespace(&name, NamespaceAction::Manage)?;
    let ns = st.store.namespace(m.account_id, &name).await?;
    if let Some(days) = req.retention_days {
        validate::retention_days(days)?;
    }
    let bundle = match &req.accepted_client_ca {
        Some(pem) => {
            check_bundle(pem)?;
            Some(pem.trim().to_string() + "\n")
        }
        None => None,
    };
    if req.retention_days.is_none() && bundle.is_none() {
        return Err(ApiError::invalid(
            "retention_days",
            "give retention_days, accepted_client_ca, or both",
        ));
    }
    match NamespaceState::parse(&ns.state) {
        Some(NamespaceState::Provisioning | NamespaceState::Active | NamespaceState::Updating) => {}
        _ => {
            return Err(ApiError::precondition(format!(
                "namespace {name} is {}; it cannot be changed now",
                ns.state
            )));
        }
    }
    let op = submit(&st, &m, &ns, "namespace.update", |operation_id| {
        NamespaceRequest::Update {
            operation_id,
            retention_days: req.retention_days,
            accepted_ca_pem: bundle.clone(),
        }
    })
    .await?;
    let certs: Vec<String> = bundle
        .as_deref()
        .map(tessera_pki::inspect_bundle)
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.fingerprint_sha256)
        .collect();
    st.audit(
        &m.caller,
        Some(m.account_id),
        "namespace.update",
        format!("namespace/{name}"),
        json!({
            "retention_days": req.retention_days,
            "accepted_client_ca": (!certs.is_empty()).then_some(certs),
            "operation_id": op.id,
        }),
    )
    .await?;
    accepted(&st, ns, convert::operation(op)).await
}

/// Delete a namespace: its runtime, store, route and certificates go → 202.
#[utoipa::path(delete, path = "/namespaces/{name}", tag = "namespaces", params(("name" = String, Path)), security(("api_key" = [])),
    responses((status = 202, body = NamespaceOperation), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn delete_namespace(
    State(st): State<SharedState>,
    m: Member,
    Path(name): Path<String>,
) -> ApiResult<(StatusCode, Json<NamespaceOperation>)> {
    m.authorize_namespace(&name, NamespaceAction::Manage)?;
    let ns = st.store.namespace(m.account_id, &name).await?;
    st.engine()?;
    // Claim the transition: of two racing deletes exactly one goes through.
    let from: Vec<&str> = NamespaceState::ALL
        .iter()
        .filter(|s| !matches!(s, NamespaceState::Deleting | NamespaceState::Deleted))
        .map(|s| s.as_str())
        .collect();
    if !st
        .store
        .transition_namespace_state(ns.id, &from, NamespaceState::Deleting.as_str())
        .await?
    {
        return Err(ApiError::precondition(format!(
            "namespace {name} is already being deleted"
        )));
    }
    let op = match submit(&st, &m, &ns, "namespace.delete", |operation_id| {
        NamespaceRequest::Delete { operation_id }
    })
    .await
    {
        Ok(op) => op,
        Err(e) => {
            st.store
                .transition_namespace_state(ns.id, &[NamespaceState::Deleting.as_str()], &ns.state)
                .await?;
            return Err(e);
        }
    };
    st.audit(
        &m.caller,
        Some(m.account_id),
        "namespace.delete",
        format!("namespace/{name}"),
        json!({ "operation_id": op.id }),
    )
    .await?;
    let ns = st.store.namespace_by_id(ns.id).await?;
    accepted(&st, ns, convert::operation(op)).await
}

/// A client certificate from the namespace's generated CA (the key is shown only once).
#[utoipa::path(post, path = "/namespaces/{name}/client-certs", tag = "namespaces", params(("name" = String, Path)),
    request_body = CreateClientCert, security(("api_key" = [])),
    responses((status = 201, body = ClientCert), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
async fn create_client_cert(
    State(st): State<SharedState>,
    m: Member,
    Path(name): Path<String>,
    Json(req): Json<CreateClientCert>,
) -> ApiResult<(StatusCode, Json<ClientCert>)> {
    m.authorize_namespace(&name, NamespaceAction::IssueClientCert)?;
    let ns = st.store.namespace(m.account_id, &name).await?;
    let cn = req.common_name.trim();
    if cn.is_empty() || cn.len() > 64 || cn.chars().any(|c| c.is_control()) {
        return Err(ApiError::invalid(
            "common_name",
            "must be 1 to 64 printable characters",
        ));
    }
    if !(1..=MAX_CLIENT_CERT_DAYS).contains(&req.valid_days) {
        return Err(ApiError::invalid(
            "valid_days",
            format!("must be between 1 and {MAX_CLIENT_CERT_DAYS}"),
        ));
    }
    if !ns.generated_ca {
        return Err(ApiError::precondition(format!(
            "namespace {name} accepts the CAs you uploaded; issue client certificates with your own CA"
        )));
    }
    let Some(ca) = st
        .pki
        .existing_namespace_ca(ns.id)
        .await
        .map_err(ApiError::internal)?
    else {
        return Err(ApiError::precondition(format!(
            "the CA of namespace {name} is still being generated; retry when it is active"
        )));
    };
    let ca_fp = tessera_pki::inspect_pem(&ca.cert_pem)
        .map_err(ApiError::internal)?
        .fingerprint_sha256;
    if !tessera_pki::inspect_bundle(&ns.accepted_ca_pem)
        .iter()
        .any(|c| c.fingerprint_sha256 == ca_fp)
    {
        return Err(ApiError::precondition(format!(
            "the generated CA of namespace {name} was removed from its accepted bundle"
        )));
    }
    let validity = Duration::days(i64::from(req.valid_days))
        .min(ca.not_after - Utc::now() - Duration::minutes(1));
    let issued = ca
        .issue(cn, &[], Usage::Client, validity)
        .map_err(ApiError::internal)?;
    let info = tessera_pki::inspect_pem(&issued.cert_pem).map_err(ApiError::internal)?;
    st.audit(
        &m.caller,
        Some(m.account_id),
        "namespace.client_cert.create",
        format!("namespace/{name}"),
        json!({
            "common_name": cn,
            "fingerprint_sha256": info.fingerprint_sha256,
            "not_after": info.not_after,
        }),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(ClientCert {
            certificate_pem: format!("{}{}", issued.cert_pem, ca.cert_pem),
            private_key_pem: issued.key_pem,
            fingerprint_sha256: info.fingerprint_sha256,
            not_after: info.not_after,
        }),
    ))
}

/// Move the namespace, live, to a cell of another region (the platform's, or the account's
/// own): the same migration as an operator's, placement choosing the cell → 202. Its progress
/// is the namespace's `migration`; abort it with `POST /namespaces/{name}/move/abort` before
/// the cutover.
#[utoipa::path(post, path = "/namespaces/{name}/move", tag = "namespaces", params(("name" = String, Path)),
    request_body = tessera_api::MoveNamespace, security(("api_key" = [])),
    responses((status = 202, body = NamespaceOperation), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn move_namespace(
    State(st): State<SharedState>,
    m: Member,
    Path(name): Path<String>,
    Json(req): Json<tessera_api::MoveNamespace>,
) -> ApiResult<(StatusCode, Json<NamespaceOperation>)> {
    m.authorize_namespace(&name, NamespaceAction::Manage)?;
    let ns = st.store.namespace(m.account_id, &name).await?;
    let region = region_of(&st, m.account_id, &req.region).await?;
    let target = place_in(&st.store, &region.id, ns.cell_id.as_deref())
        .await?
        .map_err(ApiError::precondition)?;
    let target = st.store.cell(&target).await?;
    let (op, _) = crate::routes::migrations::begin(
        &st,
        &m.caller,
        &ns,
        &target,
        tessera_api::CutoverMode::Auto,
    )
    .await?;
    let ns = st.store.namespace_by_id(ns.id).await?;
    accepted(&st, ns, convert::operation(op)).await
}

/// Abort the namespace's move before its cutover: nothing changes for clients → 202.
#[utoipa::path(post, path = "/namespaces/{name}/move/abort", tag = "namespaces", params(("name" = String, Path)),
    security(("api_key" = [])),
    responses((status = 202, body = NamespaceOperation), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn abort_move(
    State(st): State<SharedState>,
    m: Member,
    Path(name): Path<String>,
) -> ApiResult<(StatusCode, Json<NamespaceOperation>)> {
    m.authorize_namespace(&name, NamespaceAction::Manage)?;
    let ns = st.store.namespace(m.account_id, &name).await?;
    let migration = st
        .store
        .running_migration(ns.id)
        .await?
        .ok_or_else(|| ApiError::precondition(format!("namespace {name} is not moving")))?;
    let (_, Json(answer)) = crate::routes::migrations::control(
        &st,
        &m.caller,
        migration.id,
        tessera_workflows::MigrationControl::Abort,
    )
    .await?;
    let ns = st.store.namespace_by_id(ns.id).await?;
    accepted(&st, ns, answer.operation).await
}

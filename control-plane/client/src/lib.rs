//! Typed client of the Tessera REST API: one method per route, wire types from `tessera-api`.

use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tessera_api::*;
use thiserror::Error;
use uuid::Uuid;

#[derive(Debug, Error)]
pub enum ClientError {
    /// The API answered with its JSON error body.
    #[error("{status} {}: {}", .body.error.code, .body.error.message)]
    Api { status: u16, body: ErrorBody },
    #[error("unexpected answer {status}: {text}")]
    Unexpected { status: u16, text: String },
    #[error("cannot reach {url}: {source}")]
    Transport {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("invalid base URL {0}")]
    BadUrl(String),
}

impl ClientError {
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Api { body, .. } => Some(body.error.code),
            _ => None,
        }
    }
}

pub type Result<T, E = ClientError> = std::result::Result<T, E>;

#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: url::Url,
    token: Option<String>,
}

impl Client {
    /// `base` is the server root, e.g. `http://127.0.0.1:8080`.
    pub fn new(base: &str, token: Option<String>) -> Result<Self> {
        let base = url::Url::parse(base).map_err(|_| ClientError::BadUrl(base.to_string()))?;
        Ok(Self {
            http: reqwest::Client::builder()
                .user_agent(concat!("tessera-client/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| ClientError::Transport {
                    url: base.to_string(),
                    source: e,
                })?,
            base,
            token,
        })
    }

    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T> {
        let url = format!(
            "{}{}{}",
            self.base.as_str().trim_end_matches('/'),
            API_PREFIX,
            path
        );
        let mut req = self.http.request(method, &url);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.map_err(|e| ClientError::Transport {
            url: url.clone(),
            source: e,
        })?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| ClientError::Transport { url, source: e })?;
        if status.is_success() {
            let bytes = if status == StatusCode::NO_CONTENT || bytes.is_empty() {
                &b"null"[..]
            } else {
                &bytes[..]
            };
            return serde_json::from_slice(bytes).map_err(|e| ClientError::Unexpected {
                status: status.as_u16(),
                text: format!("{e}: {}", String::from_utf8_lossy(bytes)),
            });
        }
        match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(body) => Err(ClientError::Api {
                status: status.as_u16(),
                body,
            }),
            Err(_) => Err(ClientError::Unexpected {
                status: status.as_u16(),
                text: String::from_utf8_lossy(&bytes).into_owned(),
            }),
        }
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.call::<(), T>(Method::GET, path, None).await
    }

    fn paged(path: &str, page: &PageQuery) -> String {
        let mut q = vec![];
        if let Some(s) = page.page_size {
            q.push(format!("page_size={s}"));
        }
        if let Some(t) = &page.page_token {
            q.push(format!("page_token={t}"));
        }
        if q.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{}", q.join("&"))
        }
    }

    pub async fn signup(&self, req: &SignupRequest) -> Result<SignupResponse> {
        self.call(Method::POST, "/signup", Some(req)).await
    }

    pub async fn account(&self) -> Result<Account> {
        self.get("/account").await
    }

    pub async fn list_users(&self, page: &PageQuery) -> Result<Page<User>> {
        self.get(&Self::paged("/users", page)).await
    }

    pub async fn invite_user(&self, req: &InviteUserRequest) -> Result<InviteUserResponse> {
        self.call(Method::POST, "/users", Some(req)).await
    }

    pub async fn update_user(&self, id: Uuid, req: &UpdateUserRequest) -> Result<User> {
        self.call(Method::PATCH, &format!("/users/{id}"), Some(req))
            .await
    }

    pub async fn remove_user(&self, id: Uuid) -> Result<()> {
        self.call::<(), ()>(Method::DELETE, &format!("/users/{id}"), None)
            .await
    }

    pub async fn list_service_accounts(&self, page: &PageQuery) -> Result<Page<ServiceAccount>> {
        self.get(&Self::paged("/service-accounts", page)).await
    }

    pub async fn create_service_account(
        &self,
        req: &CreateServiceAccountRequest,
    ) -> Result<ServiceAccount> {
        self.call(Method::POST, "/service-accounts", Some(req))
            .await
    }

    pub async fn delete_service_account(&self, id: Uuid) -> Result<()> {
        self.call::<(), ()>(Method::DELETE, &format!("/service-accounts/{id}"), None)
            .await
    }

    pub async fn list_api_keys(&self, page: &PageQuery) -> Result<Page<ApiKey>> {
        self.get(&Self::paged("/api-keys", page)).await
    }

    pub async fn create_api_key(&self, req: &CreateApiKeyRequest) -> Result<CreateApiKeyResponse> {
        self.call(Method::POST, "/api-keys", Some(req)).await
    }

    pub async fn revoke_api_key(&self, id: Uuid) -> Result<()> {
        self.call::<(), ()>(Method::DELETE, &format!("/api-keys/{id}"), None)
            .await
    }

    pub async fn list_operations(&self, page: &PageQuery) -> Result<Page<Operation>> {
        self.get(&Self::paged("/operations", page)).await
    }

    pub async fn operation(&self, id: Uuid) -> Result<Operation> {
        self.get(&format!("/operations/{id}")).await
    }

    pub async fn audit_log(&self, page: &PageQuery) -> Result<Page<AuditEntry>> {
        self.get(&Self::paged("/audit-log", page)).await
    }

    pub async fn list_regions(&self) -> Result<Vec<Region>> {
        self.get("/regions").await
    }

    pub async fn create_region(&self, req: &CreateRegion) -> Result<Region> {
        self.call(Method::POST, "/admin/regions", Some(req)).await
    }

    pub async fn list_cells(&self, page: &PageQuery) -> Result<Page<Cell>> {
        self.get(&Self::paged("/admin/cells", page)).await
    }

    pub async fn cell(&self, id: &str) -> Result<Cell> {
        self.get(&format!("/admin/cells/{id}")).await
    }

    pub async fn provision_cell(&self, req: &ProvisionCell) -> Result<CellOperation> {
        self.call(Method::POST, "/admin/cells", Some(req)).await
    }

    pub async fn decommission_cell(&self, id: &str) -> Result<CellOperation> {
        self.call::<(), _>(Method::DELETE, &format!("/admin/cells/{id}"), None)
            .await
    }

    pub async fn drain_cell(&self, id: &str, req: &DrainCell) -> Result<CellOperation> {
        self.call(Method::POST, &format!("/admin/cells/{id}/drain"), Some(req))
            .await
    }

    /// The account's own self-hosted regions, with their cells.
    pub async fn list_own_regions(&self) -> Result<Vec<SelfHostedRegion>> {
        self.get("/self-hosted/regions").await
    }

    pub async fn create_own_region(&self, req: &CreateSelfHostedRegion) -> Result<Region> {
        self.call(Method::POST, "/self-hosted/regions", Some(req))
            .await
    }

    /// A join token for one of the account's hosts, in its region `region`.
    pub async fn create_own_join_token(
        &self,
        region: &str,
        req: &CreateSelfHostedJoinToken,
    ) -> Result<JoinToken> {
        self.call(
            Method::POST,
            &format!("/self-hosted/regions/{}/join-tokens", segment(region)),
            Some(req),
        )
        .await
    }

    pub async fn create_join_token(&self, req: &CreateJoinToken) -> Result<JoinToken> {
        self.call(Method::POST, "/admin/cells/join-tokens", Some(req))
            .await
    }

    /// Releases, newest first.
    pub async fn list_releases(&self, page: &PageQuery) -> Result<Page<Release>> {
        self.get(&Self::paged("/admin/releases", page)).await
    }

    pub async fn release(&self, version: &str) -> Result<Release> {
        self.get(&format!("/admin/releases/{}", segment(version)))
            .await
    }

    /// Publishes a release; an existing version answers `already_exists`.
    pub async fn create_release(&self, req: &CreateRelease) -> Result<Release> {
        self.call(Method::POST, "/admin/releases", Some(req)).await
    }

    /// Starts rolling a release out ring by ring; the operation has the rollout's id.
    pub async fn start_rollout(&self, req: &StartRollout) -> Result<RolloutOperation> {
        self.call(Method::POST, "/admin/rollouts", Some(req)).await
    }

    /// Rollouts, newest first.
    pub async fn list_rollouts(&self, page: &PageQuery) -> Result<Page<Rollout>> {
        self.get(&Self::paged("/admin/rollouts", page)).await
    }

    /// One rollout, its progress live while it runs.
    pub async fn start_migration(&self, req: &StartMigration) -> Result<MigrationOperation> {
        self.call(Method::POST, "/admin/migrations", Some(req))
            .await
    }

    pub async fn list_migrations(&self) -> Result<Vec<Migration>> {
        self.get("/admin/migrations").await
    }

    pub async fn migration(&self, id: Uuid) -> Result<Migration> {
        self.get(&format!("/admin/migrations/{id}")).await
    }

    /// `cutover` or `abort`.
    pub async fn migration_action(&self, id: Uuid, action: &str) -> Result<MigrationOperation> {
        self.call::<(), _>(
            Method::POST,
            &format!("/admin/migrations/{id}/{action}"),
            None,
        )
        .await
    }

    pub async fn list_edges(&self) -> Result<Vec<tessera_api::edge::Edge>> {
        self.get("/admin/edges").await
    }

    pub async fn create_edge(
        &self,
        req: &tessera_api::edge::CreateEdge,
    ) -> Result<tessera_api::edge::CreatedEdge> {
        self.call(Method::POST, "/admin/edges", Some(req)).await
    }

    pub async fn rollout(&self, id: Uuid) -> Result<Rollout> {
        self.get(&format!("/admin/rollouts/{id}")).await
    }

    /// Controls a running rollout and answers it as it is after the control; an ended rollout
    /// answers `failed_precondition`. `ring` is sent with [`RolloutAction::Approve`] only (none:
    /// the ring that waits); the other actions have no body.
    pub async fn rollout_action(
        &self,
        id: Uuid,
        action: RolloutAction,
        ring: Option<&str>,
    ) -> Result<Rollout> {
        let path = format!("/admin/rollouts/{id}/{}", action.as_str());
        match action {
            RolloutAction::Approve => {
                let body = ApproveRollout {
                    ring: ring.map(str::to_string),
                };
                self.call(Method::POST, &path, Some(&body)).await
            }
            RolloutAction::Pause | RolloutAction::Resume | RolloutAction::Abort => {
                self.call::<(), _>(Method::POST, &path, None).await
            }
        }
    }

    pub async fn list_namespaces(&self, page: &PageQuery) -> Result<Page<Namespace>> {
        self.get(&Self::paged("/namespaces", page)).await
    }

    pub async fn namespace(&self, name: &str) -> Result<Namespace> {
        self.get(&format!("/namespaces/{}", segment(name))).await
    }

    /// Starts creating a namespace; follow the answer's operation.
    pub async fn create_namespace(&self, req: &CreateNamespace) -> Result<NamespaceOperation> {
        self.call(Method::POST, "/namespaces", Some(req)).await
    }

    /// Starts moving the namespace, live, to a cell of `req.region`.
    pub async fn move_namespace(
        &self,
        name: &str,
        req: &MoveNamespace,
    ) -> Result<NamespaceOperation> {
        self.call(
            Method::POST,
            &format!("/namespaces/{}/move", segment(name)),
            Some(req),
        )
        .await
    }

    /// Aborts the namespace's move before its cutover.
    pub async fn abort_namespace_move(&self, name: &str) -> Result<NamespaceOperation> {
        self.call::<(), _>(
            Method::POST,
            &format!("/namespaces/{}/move/abort", segment(name)),
            None,
        )
        .await
    }

    /// Adds a standby in a cell of `req.region`.
    pub async fn add_replica(&self, name: &str, req: &AddReplica) -> Result<NamespaceOperation> {
        self.call(
            Method::POST,
            &format!("/namespaces/{}/replicas", segment(name)),
            Some(req),
        )
        .await
    }

    /// Removes the namespace's standby in `region`.
    pub async fn remove_replica(&self, name: &str, region: &str) -> Result<NamespaceOperation> {
        self.call::<(), _>(
            Method::DELETE,
            &format!("/namespaces/{}/replicas/{}", segment(name), segment(region)),
            None,
        )
        .await
    }

    /// Starts changing the retention and/or the accepted client CA bundle.
    pub async fn update_namespace(
        &self,
        name: &str,
        req: &UpdateNamespace,
    ) -> Result<NamespaceOperation> {
        self.call(
            Method::PATCH,
            &format!("/namespaces/{}", segment(name)),
            Some(req),
        )
        .await
    }

    /// Starts deleting a namespace; once the operation is fulfilled the name is not found.
    pub async fn delete_namespace(&self, name: &str) -> Result<NamespaceOperation> {
        self.call::<(), _>(
            Method::DELETE,
            &format!("/namespaces/{}", segment(name)),
            None,
        )
        .await
    }

    /// A client certificate from the namespace's generated CA; the private key is in this
    /// answer only.
    pub async fn create_client_cert(
        &self,
        namespace: &str,
        req: &CreateClientCert,
    ) -> Result<ClientCert> {
        self.call(
            Method::POST,
            &format!("/namespaces/{}/client-certs", segment(namespace)),
            Some(req),
        )
        .await
    }
}

/// What `POST /admin/rollouts/{id}/{action}` does to a running rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RolloutAction {
    /// Hold the rollout where it stands.
    Pause,
    /// Continue a paused rollout.
    Resume,
    /// Stop the rollout for good; batches that passed keep the release.
    Abort,
    /// Let the rollout start a ring that needs approval.
    Approve,
}

impl RolloutAction {
    /// The route's last path segment.
    pub fn as_str(self) -> &'static str {
        match self {
            RolloutAction::Pause => "pause",
            RolloutAction::Resume => "resume",
            RolloutAction::Abort => "abort",
            RolloutAction::Approve => "approve",
        }
    }
}

/// `s` as one path segment: anything but unreserved characters is percent-encoded, so a name
/// cannot add segments or a query to the path.
fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};

    use serde_json::{Value, json};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use super::*;

    /// A request as the fake server saw it.
    #[derive(Debug, Clone, PartialEq)]
    struct Seen {
        method: String,
        /// With the query.
        path: String,
        body: String,
    }

    /// An HTTP/1.1 server that records every request and answers them with `answers`, in
    /// order, one request per connection. Stopped by aborting the returned task.
    async fn fake_server(
        answers: Vec<(u16, Value)>,
    ) -> (String, Arc<Mutex<Vec<Seen>>>, tokio::task::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let mut answers = VecDeque::from(answers);
        let task = tokio::spawn(async move {
            loop {
                let (mut conn, _) = listener.accept().await.unwrap();
                let request = read_request(&mut conn).await;
                log.lock().unwrap().push(request);
                let (status, body) = answers.pop_front().expect("an answer for each request");
                let body = body.to_string();
                let answer = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                conn.write_all(answer.as_bytes()).await.unwrap();
            }
        });
        (base, seen, task)
    }

    async fn read_request(conn: &mut TcpStream) -> Seen {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let head_end = loop {
            let n = conn.read(&mut chunk).await.unwrap();
            assert!(n > 0, "connection closed mid-request");
            buf.extend_from_slice(&chunk[..n]);
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let length = head
            .lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .map_or(0, |(_, v)| v.trim().parse::<usize>().unwrap());
        while buf.len() < head_end + length {
            let n = conn.read(&mut chunk).await.unwrap();
            assert!(n > 0, "connection closed mid-body");
            buf.extend_from_slice(&chunk[..n]);
        }
        let mut words = head.split_whitespace();
        Seen {
            method: words.next().unwrap().into(),
            path: words.next().unwrap().into(),
            body: String::from_utf8_lossy(&buf[head_end..]).into_owned(),
        }
    }

    fn seen(method: &str, path: &str, body: &str) -> Seen {
        Seen {
            method: method.into(),
            path: path.into(),
            body: body.into(),
        }
    }

    fn sample_rollout(id: Uuid, status: &str) -> Value {
        json!({
            "id": id,
            "release": "2026.11.1",
            "status": status,
            "progress": {"status": status, "reason": null, "bake_until": null, "fraction": 0.5, "rings": []},
            "operation_id": id,
            "created_at": "2026-11-02T10:00:00Z",
            "updated_at": "2026-11-02T10:05:00Z",
        })
    }

    #[tokio::test]
    async fn rollout_routes_and_bodies() {
        let id = Uuid::now_v7();
        let ended = json!({"error": {"code": "failed_precondition", "message": "the rollout has ended (done)"}});
        let (base, requests, server) = fake_server(vec![
            (
                200,
                json!({"items": [sample_rollout(id, "running")], "next_page_token": null}),
            ),
            (200, sample_rollout(id, "running")),
            (202, sample_rollout(id, "paused")),
            (202, sample_rollout(id, "running")),
            (202, sample_rollout(id, "running")),
            (409, ended),
        ])
        .await;
        let c = Client::new(&base, Some("tok".into())).unwrap();

        let page = c
            .list_rollouts(&PageQuery {
                page_size: Some(200),
                page_token: Some("abc".into()),
            })
            .await
            .unwrap();
        assert_eq!(page.items[0].id, id);
        assert_eq!(c.rollout(id).await.unwrap().status, "running");
        let paused = c
            .rollout_action(id, RolloutAction::Pause, None)
            .await
            .unwrap();
        assert_eq!(paused.status, "paused");
        c.rollout_action(id, RolloutAction::Approve, Some("prod"))
            .await
            .unwrap();
        c.rollout_action(id, RolloutAction::Approve, None)
            .await
            .unwrap();
        let err = c
            .rollout_action(id, RolloutAction::Abort, None)
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some(ErrorCode::FailedPrecondition));
        server.abort();

        let p = format!("/api/v1/admin/rollouts/{id}");
        assert_eq!(
            *requests.lock().unwrap(),
            vec![
                seen(
                    "GET",
                    "/api/v1/admin/rollouts?page_size=200&page_token=abc",
                    ""
                ),
                seen("GET", &p, ""),
                seen("POST", &format!("{p}/pause"), ""),
                seen("POST", &format!("{p}/approve"), r#"{"ring":"prod"}"#),
                seen("POST", &format!("{p}/approve"), r#"{"ring":null}"#),
                seen("POST", &format!("{p}/abort"), ""),
            ]
        );
    }

    #[tokio::test]
    async fn start_sends_the_rings_text() {
        let id = Uuid::now_v7();
        let answer = json!({
            "operation": {
                "id": id,
                "kind": "rollout",
                "state": "pending",
                "progress": 0.0,
                "resource": {"kind": "rollout", "id": id.to_string()},
                "created_at": "2026-11-02T10:00:00Z",
                "updated_at": "2026-11-02T10:00:00Z",
            },
            "rollout": sample_rollout(id, "running"),
        });
        let (base, requests, server) = fake_server(vec![(202, answer)]).await;
        let c = Client::new(&base, None).unwrap();
        let rings = "[[ring]]\nname = \"canary\"\n";
        let r = c
            .start_rollout(&StartRollout {
                release: "2026.11.1".into(),
                rings: Some(rings.into()),
                apply_timeout_secs: Some(60),
            })
            .await
            .unwrap();
        server.abort();
        assert_eq!((r.operation.id, r.rollout.id), (id, id));
        let req = requests.lock().unwrap()[0].clone();
        assert_eq!(
            (req.method.as_str(), req.path.as_str()),
            ("POST", "/api/v1/admin/rollouts")
        );
        let body: StartRollout = serde_json::from_str(&req.body).unwrap();
        assert_eq!(body.release, "2026.11.1");
        assert_eq!(body.rings.as_deref(), Some(rings));
        assert_eq!(body.apply_timeout_secs, Some(60));
    }

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(segment("orders-1"), "orders-1");
        assert_eq!(segment("a/b?c d"), "a%2Fb%3Fc%20d");
        assert_eq!(segment("é"), "%C3%A9");
    }
}

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
    use super::segment;

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(segment("orders-1"), "orders-1");
        assert_eq!(segment("a/b?c d"), "a%2Fb%3Fc%20d");
        assert_eq!(segment("é"), "%C3%A9");
    }
}

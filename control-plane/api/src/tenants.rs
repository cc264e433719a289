//! Accounts, users, service accounts and API keys.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::operations::Operation;

/// Account-level role of a user or service account, most to least privileged.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Owner,
    Admin,
    Developer,
    ReadOnly,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Owner, Role::Admin, Role::Developer, Role::ReadOnly];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Developer => "developer",
            Role::ReadOnly => "read_only",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Per-namespace role granted to a service account, on top of what its account role allows:
/// `read` sees the namespace, `write` also issues its client certificates (the credential
/// workers connect with), `admin` also changes and deletes it. Developers and above already
/// administer every namespace of their account, so a grant matters to read-only accounts.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum NamespaceRole {
    Admin,
    Write,
    Read,
}

impl NamespaceRole {
    pub fn as_str(self) -> &'static str {
        match self {
            NamespaceRole::Admin => "admin",
            NamespaceRole::Write => "write",
            NamespaceRole::Read => "read",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Account {
    pub id: Uuid,
    pub name: String,
    /// DNS label used in namespace hosts: `<namespace>.<slug>.<base-domain>`.
    pub slug: String,
    pub quotas: Quotas,
    pub usage: Usage,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Quotas {
    pub max_namespaces: u32,
    pub max_users: u32,
    pub max_service_accounts: u32,
    pub max_api_keys: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Usage {
    pub namespaces: u32,
    pub users: u32,
    pub service_accounts: u32,
    pub api_keys: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UserState {
    /// Invited, has not set a password yet.
    Invited,
    Active,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct User {
    pub id: Uuid,
    pub account_id: Uuid,
    pub email: String,
    pub role: Role,
    pub state: UserState,
    pub created_at: DateTime<Utc>,
}

#[derive(Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SignupRequest {
    /// 3–63 characters: lowercase letters, digits and `-`, starting with a letter.
    pub account_name: String,
    pub email: String,
    /// At least 10 characters.
    pub password: String,
}

crate::debug_without_secrets!(SignupRequest {
    account_name,
    email
});

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SignupResponse {
    pub account: Account,
    pub user: User,
    pub api_key: IssuedKey,
    /// The sign-up workflow's operation.
    pub operation: Operation,
}

/// A freshly issued key: the token is shown only in this answer.
#[derive(Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct IssuedKey {
    pub id: Uuid,
    pub token: String,
}

crate::debug_without_secrets!(IssuedKey { id });

#[derive(Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

crate::debug_without_secrets!(LoginRequest { email });

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LoginResponse {
    pub user: User,
    /// For a new console session: send it as `X-CSRF-Token` on every state-changing request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csrf_token: Option<String>,
}

/// `GET /api/v1/session`: who is calling, for the console.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Session {
    pub user: User,
    pub account: Account,
    /// Present for a console session: the value of the `X-CSRF-Token` header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csrf_token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct InviteUserRequest {
    pub email: String,
    pub role: Role,
}

#[derive(Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct InviteUserResponse {
    pub user: User,
    /// One-time token the invitee passes to `POST /api/v1/invitations/accept` (shown once).
    pub invite_token: String,
}

crate::debug_without_secrets!(InviteUserResponse { user });

#[derive(Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AcceptInviteRequest {
    pub token: String,
    pub password: String,
}

crate::debug_without_secrets!(AcceptInviteRequest {});

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UpdateUserRequest {
    pub role: Role,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ServiceAccount {
    pub id: Uuid,
    pub account_id: Uuid,
    pub name: String,
    pub role: Role,
    pub namespace_access: BTreeMap<String, NamespaceRole>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CreateServiceAccountRequest {
    pub name: String,
    pub role: Role,
    #[serde(default)]
    pub namespace_access: Option<BTreeMap<String, NamespaceRole>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ApiKey {
    pub id: Uuid,
    pub name: String,
    pub owner: ApiKeyOwner,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Who an API key acts as.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ApiKeyOwner {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_id: Option<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CreateApiKeyRequest {
    /// 1–64 characters.
    pub name: String,
    /// In the future, at most two years ahead; default 90 days.
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
    /// Omit to create a key for yourself.
    #[serde(default)]
    pub owner: Option<CreateApiKeyOwner>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CreateApiKeyOwner {
    pub service_account_id: Uuid,
}

#[derive(Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CreateApiKeyResponse {
    pub api_key: ApiKey,
    /// Shown only in this answer.
    pub token: String,
}

crate::debug_without_secrets!(CreateApiKeyResponse { api_key });

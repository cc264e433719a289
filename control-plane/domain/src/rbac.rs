//! Who may do what inside an account.
//!
//! One pure function decides every authorisation question so the policy can be read, and
//! tested, in one place. Roles are ordered: owner > admin > developer > read_only.

use tessera_api::{NamespaceRole, Role};
use thiserror::Error;

/// Something a principal wants to do inside its own account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Read account, users, service accounts, operations.
    Read,
    ReadAuditLog,
    /// List every API key of the account, not only one's own.
    ReadAllApiKeys,
    InviteUser {
        role: Role,
    },
    ChangeUserRole {
        from: Role,
        to: Role,
    },
    RemoveUser {
        role: Role,
    },
    CreateServiceAccount {
        role: Role,
    },
    DeleteServiceAccount {
        role: Role,
    },
    CreateOwnApiKey,
    CreateServiceAccountApiKey,
    RevokeOwnApiKey,
    RevokeAnyApiKey,
    /// Create a namespace (an existing one is authorised with [`authorize_namespace`]).
    CreateNamespace,
    /// Create the account's own self-hosted regions and join its hosts to them.
    ManageSelfHostedRegions,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("role {role} may not {what}")]
pub struct Denied {
    pub role: Role,
    pub what: &'static str,
}

/// How much a role may do, highest first. Spelled out here rather than taken from the wire
/// enum's declaration order, which a new role or a reordering would silently change.
fn rank(role: Role) -> u8 {
    match role {
        Role::Owner => 4,
        Role::Admin => 3,
        Role::Developer => 2,
        Role::ReadOnly => 1,
    }
}

fn at_least(role: Role, min: Role) -> bool {
    rank(role) >= rank(min)
}

/// How much access to a namespace grants, highest first (see [`rank`]).
fn namespace_rank(access: NamespaceRole) -> u8 {
    match access {
        NamespaceRole::Admin => 3,
        NamespaceRole::Write => 2,
        NamespaceRole::Read => 1,
    }
}

/// Decides whether `role` may perform `action`.
pub fn authorize(role: Role, action: Action) -> Result<(), Denied> {
    let (min, what) = match action {
        Action::Read => (Role::ReadOnly, "read"),
        Action::ReadAuditLog => (Role::Admin, "read the audit log"),
        Action::ReadAllApiKeys => (Role::Admin, "list other principals' API keys"),
        Action::InviteUser { role: Role::Owner } => (Role::Owner, "invite an owner"),
        Action::InviteUser { .. } => (Role::Admin, "invite users"),
        Action::ChangeUserRole { from, to } if from == Role::Owner || to == Role::Owner => {
            (Role::Owner, "grant or take away the owner role")
        }
        Action::ChangeUserRole { .. } => (Role::Admin, "change roles"),
        Action::RemoveUser { role: Role::Owner } => (Role::Owner, "remove an owner"),
        Action::RemoveUser { .. } => (Role::Admin, "remove users"),
        Action::CreateServiceAccount { role: Role::Owner }
        | Action::DeleteServiceAccount { role: Role::Owner } => {
            (Role::Owner, "manage owner service accounts")
        }
        Action::CreateServiceAccount { .. } | Action::DeleteServiceAccount { .. } => {
            (Role::Admin, "manage service accounts")
        }
        Action::CreateOwnApiKey => (Role::Developer, "create API keys"),
        Action::CreateServiceAccountApiKey => (Role::Admin, "create API keys for service accounts"),
        Action::RevokeOwnApiKey => (Role::Developer, "revoke API keys"),
        Action::RevokeAnyApiKey => (Role::Admin, "revoke other principals' API keys"),
        Action::CreateNamespace => (Role::Developer, "create namespaces"),
        Action::ManageSelfHostedRegions => (Role::Admin, "manage self-hosted regions"),
    };
    if at_least(role, min) {
        Ok(())
    } else {
        Err(Denied { role, what })
    }
}

/// Something a principal wants to do to one existing namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NamespaceAction {
    /// See the namespace.
    Read,
    /// Issue a client certificate, the credential that lets workers use the namespace.
    IssueClientCert,
    /// Change or delete the namespace.
    Manage,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("role {role} may not {what} namespace {namespace}{}", granted.map(|g| format!(" (access granted to it: {})", g.as_str())).unwrap_or_default())]
pub struct NamespaceDenied {
    pub role: Role,
    pub namespace: String,
    pub granted: Option<NamespaceRole>,
    pub what: &'static str,
}

/// The access a role has to every namespace of its account: members who may create namespaces
/// (developers and above) administer them; read-only members read them.
fn namespace_access_of(role: Role) -> NamespaceRole {
    if at_least(role, Role::Developer) {
        NamespaceRole::Admin
    } else {
        NamespaceRole::Read
    }
}

/// Decides whether `role`, plus the access `granted` to this namespace (a service account's
/// `namespace_access`), may perform `action` on namespace `namespace`. A grant only adds: a
/// read-only service account with `write` on one namespace may issue its client certificates,
/// and nothing more anywhere else.
pub fn authorize_namespace(
    role: Role,
    granted: Option<NamespaceRole>,
    namespace: &str,
    action: NamespaceAction,
) -> Result<(), NamespaceDenied> {
    let (min, what) = match action {
        NamespaceAction::Read => (NamespaceRole::Read, "read"),
        NamespaceAction::IssueClientCert => (NamespaceRole::Write, "issue client certificates for"),
        NamespaceAction::Manage => (NamespaceRole::Admin, "change or delete"),
    };
    let of_role = namespace_access_of(role);
    let has = granted.map_or(of_role, |g| {
        if namespace_rank(g) > namespace_rank(of_role) {
            g
        } else {
            of_role
        }
    });
    if namespace_rank(has) >= namespace_rank(min) {
        Ok(())
    } else {
        Err(NamespaceDenied {
            role,
            namespace: namespace.to_string(),
            granted,
            what,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Role::*;

    fn allowed(role: Role, action: Action) -> bool {
        authorize(role, action).is_ok()
    }

    #[test]
    fn read_only_cannot_mutate_anything() {
        let mutations = [
            Action::InviteUser { role: ReadOnly },
            Action::ChangeUserRole {
                from: ReadOnly,
                to: Developer,
            },
            Action::RemoveUser { role: ReadOnly },
            Action::CreateServiceAccount { role: ReadOnly },
            Action::DeleteServiceAccount { role: ReadOnly },
            Action::CreateOwnApiKey,
            Action::CreateServiceAccountApiKey,
            Action::RevokeOwnApiKey,
            Action::RevokeAnyApiKey,
            Action::CreateNamespace,
        ];
        for a in mutations {
            assert!(!allowed(ReadOnly, a), "{a:?}");
        }
        assert!(allowed(ReadOnly, Action::Read));
        assert!(!allowed(ReadOnly, Action::ReadAuditLog));
    }

    #[test]
    fn only_owners_touch_owners() {
        assert!(!allowed(Admin, Action::InviteUser { role: Owner }));
        assert!(!allowed(
            Admin,
            Action::ChangeUserRole {
                from: Owner,
                to: Admin
            }
        ));
        assert!(!allowed(
            Admin,
            Action::ChangeUserRole {
                from: Admin,
                to: Owner
            }
        ));
        assert!(!allowed(Admin, Action::RemoveUser { role: Owner }));
        assert!(allowed(Owner, Action::RemoveUser { role: Owner }));
        assert!(allowed(
            Admin,
            Action::ChangeUserRole {
                from: Developer,
                to: Admin
            }
        ));
    }

    #[test]
    fn owners_and_admins_manage_self_hosted_regions() {
        for (role, may) in [
            (Owner, true),
            (Admin, true),
            (Developer, false),
            (ReadOnly, false),
        ] {
            assert_eq!(
                allowed(role, Action::ManageSelfHostedRegions),
                may,
                "{role:?}"
            );
        }
    }

    #[test]
    fn developers_manage_only_their_own_keys() {
        assert!(allowed(Developer, Action::CreateOwnApiKey));
        assert!(allowed(Developer, Action::RevokeOwnApiKey));
        assert!(!allowed(Developer, Action::RevokeAnyApiKey));
        assert!(!allowed(Developer, Action::CreateServiceAccountApiKey));
        assert!(!allowed(Developer, Action::InviteUser { role: ReadOnly }));
        assert!(allowed(Admin, Action::RevokeAnyApiKey));
    }

    #[test]
    fn namespace_grants_add_to_the_role_and_never_take_away() {
        use NamespaceAction as A;
        use NamespaceRole as G;
        let ok =
            |role, granted, action| authorize_namespace(role, granted, "payments", action).is_ok();
        for role in [Owner, Admin, Developer] {
            for granted in [None, Some(G::Read), Some(G::Write), Some(G::Admin)] {
                for action in [A::Read, A::IssueClientCert, A::Manage] {
                    assert!(ok(role, granted, action), "{role} {granted:?} {action:?}");
                }
            }
        }
        assert!(ok(ReadOnly, None, A::Read));
        assert!(!ok(ReadOnly, None, A::IssueClientCert));
        assert!(!ok(ReadOnly, Some(G::Read), A::IssueClientCert));
        assert!(ok(ReadOnly, Some(G::Write), A::IssueClientCert));
        assert!(!ok(ReadOnly, Some(G::Write), A::Manage));
        assert!(ok(ReadOnly, Some(G::Admin), A::Manage));
        let denied = authorize_namespace(ReadOnly, Some(G::Write), "payments", A::Manage)
            .unwrap_err()
            .to_string();
        assert_eq!(
            denied,
            "role read_only may not change or delete namespace payments (access granted to it: write)"
        );
    }
}

//! Who may do what inside an account.
//!
//! One pure function decides every authorisation question so the policy can be read, and
//! tested, in one place. Roles are ordered: owner > admin > developer > read_only.

use tessera_api::Role;
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
    /// Create, update or delete namespaces.
    ManageNamespaces,
    /// Issue client certificates from a namespace's generated CA.
    IssueClientCert,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("role {role} may not {what}")]
pub struct Denied {
    pub role: Role,
    pub what: &'static str,
}

fn at_least(role: Role, min: Role) -> bool {
    // `Role` derives `Ord` in declaration order: Owner < Admin < Developer < ReadOnly.
    role <= min
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
        Action::ManageNamespaces => (Role::Developer, "create, change or delete namespaces"),
        Action::IssueClientCert => (Role::Developer, "issue client certificates"),
    };
    if at_least(role, min) {
        Ok(())
    } else {
        Err(Denied { role, what })
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
            Action::ManageNamespaces,
            Action::IssueClientCert,
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
    fn developers_manage_only_their_own_keys() {
        assert!(allowed(Developer, Action::CreateOwnApiKey));
        assert!(allowed(Developer, Action::RevokeOwnApiKey));
        assert!(!allowed(Developer, Action::RevokeAnyApiKey));
        assert!(!allowed(Developer, Action::CreateServiceAccountApiKey));
        assert!(!allowed(Developer, Action::InviteUser { role: ReadOnly }));
        assert!(allowed(Admin, Action::RevokeAnyApiKey));
    }
}

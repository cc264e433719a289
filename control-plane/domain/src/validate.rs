//! Validation of user input: names, emails, passwords, releases.
//!
//! Every rule answers with the offending field so the API and the console can show the error
//! next to it.

mod release;

use std::borrow::Cow;

use thiserror::Error;

pub use release::{AGENT_OWNED_FLAGS, agent_release, release, release_version, runtime_release};

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    /// The path of the offending field in the request body, e.g. `name` or
    /// `runtime.flags[3]`.
    pub field: Cow<'static, str>,
    pub message: String,
}

impl ValidationError {
    pub fn new(field: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Account names double as DNS labels in namespace hosts, so they follow RFC 1123 label rules:
/// 3–63 characters of `a-z`, `0-9` and `-`, starting with a letter and not ending with `-`.
pub fn account_name(name: &str) -> Result<(), ValidationError> {
    dns_label("account_name", name, 3)
}

/// Longest namespace name: Temporal Cloud's limit, which keeps `<name>.<account>` a short
/// Temporal namespace and `<name>.<account>.<base-domain>` a short host.
pub const MAX_NAMESPACE_NAME: usize = 39;
/// Retention of closed workflows, in days (Temporal Cloud's range).
pub const RETENTION_DAYS: std::ops::RangeInclusive<u32> = 1..=90;

/// A namespace name: a DNS label of 2–39 characters (it becomes the first label of its host).
pub fn namespace_name(name: &str) -> Result<(), ValidationError> {
    dns_label("name", name, 2)?;
    if name.len() > MAX_NAMESPACE_NAME {
        return Err(ValidationError::new(
            "name",
            format!("must be at most {MAX_NAMESPACE_NAME} characters long"),
        ));
    }
    Ok(())
}

pub fn retention_days(days: u32) -> Result<(), ValidationError> {
    if !RETENTION_DAYS.contains(&days) {
        return Err(ValidationError::new(
            "retention_days",
            format!(
                "must be between {} and {} days",
                RETENTION_DAYS.start(),
                RETENTION_DAYS.end()
            ),
        ));
    }
    Ok(())
}

/// A DNS label of at least `min` characters (lowercase, starts with a letter, no trailing `-`).
pub fn dns_label(field: &'static str, s: &str, min: usize) -> Result<(), ValidationError> {
    if s.len() < min || s.len() > 63 {
        return Err(ValidationError::new(
            field,
            format!("must be {min} to 63 characters long"),
        ));
    }
    if !s.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err(ValidationError::new(
            field,
            "must start with a lowercase letter",
        ));
    }
    if s.ends_with('-') {
        return Err(ValidationError::new(field, "must not end with '-'"));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(ValidationError::new(
            field,
            format!("may contain only lowercase letters, digits and '-', found {c:?}"),
        ));
    }
    if s.contains("--") {
        return Err(ValidationError::new(field, "must not contain '--'"));
    }
    Ok(())
}

/// Checks an email address and returns it normalised to lowercase.
pub fn email(raw: &str) -> Result<String, ValidationError> {
    let e = raw.trim().to_ascii_lowercase();
    let bad = |m: &str| Err(ValidationError::new("email", m.to_string()));
    if e.is_empty() {
        return bad("is required");
    }
    if e.len() > 254 {
        return bad("must be at most 254 characters");
    }
    let Some((local, domain)) = e.split_once('@') else {
        return bad("must look like name@example.com");
    };
    if local.is_empty() || local.len() > 64 || domain.contains('@') {
        return bad("must look like name@example.com");
    }
    if local
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || "<>()[],;:\"\\".contains(c))
    {
        return bad("contains a character not allowed in an address");
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2
        || labels.iter().any(|l| {
            l.is_empty()
                || l.len() > 63
                || l.starts_with('-')
                || l.ends_with('-')
                || !l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
    {
        return bad("must have a valid domain, e.g. example.com");
    }
    Ok(e)
}

pub const PASSWORD_MIN: usize = 10;
pub const PASSWORD_MAX: usize = 128;

/// Passwords: 10–128 characters, not a single repeated character, not the email itself.
pub fn password(pw: &str, email: &str) -> Result<(), ValidationError> {
    let n = pw.chars().count();
    if n < PASSWORD_MIN {
        return Err(ValidationError::new(
            "password",
            format!("must be at least {PASSWORD_MIN} characters"),
        ));
    }
    if n > PASSWORD_MAX {
        return Err(ValidationError::new(
            "password",
            format!("must be at most {PASSWORD_MAX} characters"),
        ));
    }
    let first = pw.chars().next();
    if pw.chars().all(|c| Some(c) == first) {
        return Err(ValidationError::new(
            "password",
            "must not repeat one character",
        ));
    }
    if !email.is_empty() && pw.eq_ignore_ascii_case(email) {
        return Err(ValidationError::new(
            "password",
            "must not be your email address",
        ));
    }
    Ok(())
}

/// Display names of API keys and service accounts: 1–64 printable characters, trimmed.
pub fn display_name(field: &'static str, name: &str) -> Result<String, ValidationError> {
    let n = name.trim();
    if n.is_empty() {
        return Err(ValidationError::new(field, "is required"));
    }
    if n.chars().count() > 64 {
        return Err(ValidationError::new(field, "must be at most 64 characters"));
    }
    if let Some(c) = n
        .chars()
        .find(|c| !(c.is_alphanumeric() || " _.-".contains(*c)))
    {
        return Err(ValidationError::new(
            field,
            format!("may contain letters, digits, spaces and _ . - only, found {c:?}"),
        ));
    }
    Ok(n.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_names() {
        for ok in [
            "acme",
            "acme-corp",
            "a1b",
            "x23456789012345678901234567890123456789012345678901234567890123"[..63].as_ref(),
        ] {
            assert_eq!(account_name(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "ab",
            "Acme",
            "1acme",
            "acme-",
            "ac_me",
            "ac me",
            "a--b",
            &"a".repeat(64),
        ] {
            let err = account_name(bad).unwrap_err();
            assert_eq!(err.field, "account_name", "{bad}");
        }
    }

    #[test]
    fn emails() {
        assert_eq!(email(" Alice@Example.COM ").unwrap(), "alice@example.com");
        assert!(email("a.b+tag@sub.example.io").is_ok());
        for bad in [
            "",
            "alice",
            "alice@",
            "@example.com",
            "alice@example",
            "a b@example.com",
            "alice@exa_mple.com",
            "alice@-example.com",
            "a@b@example.com",
            "alice@example..com",
        ] {
            assert!(email(bad).is_err(), "{bad}");
        }
        assert!(email(&format!("{}@example.com", "a".repeat(65))).is_err());
    }

    #[test]
    fn passwords() {
        assert!(password("correct horse battery", "a@b.co").is_ok());
        assert!(password("short", "a@b.co").is_err());
        assert!(password("aaaaaaaaaaaa", "a@b.co").is_err());
        assert!(password(&"ab".repeat(65), "a@b.co").is_err());
        assert!(password("Alice@Example.com", "alice@example.com").is_err());
    }

    #[test]
    fn display_names() {
        assert_eq!(display_name("name", "  ci key ").unwrap(), "ci key");
        assert!(display_name("name", "").is_err());
        assert!(display_name("name", "<script>").is_err());
        assert!(display_name("name", &"k".repeat(65)).is_err());
    }

    #[test]
    fn namespace_names_and_retention() {
        assert!(namespace_name("orders").is_ok());
        assert!(namespace_name("o1").is_ok());
        assert_eq!(namespace_name("o").unwrap_err().field, "name");
        assert!(namespace_name(&"a".repeat(39)).is_ok());
        assert!(namespace_name(&"a".repeat(40)).is_err());
        assert!(namespace_name("Orders").is_err());
        assert!(
            namespace_name("orders.acme").is_err(),
            "a dot would add a host label"
        );
        assert!(retention_days(1).is_ok() && retention_days(90).is_ok());
        assert_eq!(retention_days(0).unwrap_err().field, "retention_days");
        assert!(retention_days(91).is_err());
    }
}

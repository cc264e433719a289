//! Validation of a release before it is stored. Releases are immutable and a rollout applies
//! one to every cell of a ring, so whatever would break a runtime or the agent's supervision of
//! it is refused here, with the path of the offending field.

use std::ops::RangeInclusive;

use tessera_api::{AgentRelease, CreateRelease, RuntimeRelease};

use super::ValidationError;

pub const MAX_VERSION: usize = 64;
pub const MAX_RUNTIME_VERSION: usize = 32;
pub const MAX_BINARY: usize = 512;
pub const MAX_FLAGS: usize = 32;
pub const MAX_FLAG: usize = 256;
pub const MAX_DYNAMIC_CONFIG_KEYS: usize = 64;
pub const MAX_DYNAMIC_CONFIG_KEY: usize = 128;
pub const MAX_NOTES: usize = 2000;
pub const REPORT_INTERVAL_MS: RangeInclusive<u64> = 500..=60_000;
pub const CANARY_INTERVAL_MS: RangeInclusive<u64> = 1_000..=600_000;

/// Flags of `temporal server start-dev` the cell agent sets itself: its store, its ports, its
/// namespace and its headless mode are what supervision, re-adoption and the ingress routes
/// rely on, so a release may not set them, with or without `=value`.
pub const AGENT_OWNED_FLAGS: &[&str] = &[
    "--db-filename",
    "--port",
    "--ui-port",
    "--http-port",
    "--metrics-port",
    "--headless",
    "--ip",
    "--namespace",
    "--config",
    "--sqlite-pragma",
];

/// A release as an operator submits it.
pub fn release(r: &CreateRelease) -> Result<(), ValidationError> {
    release_version(&r.version)?;
    runtime_release(&r.runtime)?;
    agent_release(&r.agent)?;
    if let Some(notes) = &r.notes
        && notes.chars().count() > MAX_NOTES
    {
        return Err(ValidationError::new(
            "notes",
            format!("must be at most {MAX_NOTES} characters"),
        ));
    }
    Ok(())
}

/// A release version (`2026.11.1`, `1.32.0-tessera.2`): 1–64 characters of letters, digits,
/// `.`, `+` and `-`, starting with a letter or digit. It names the release in URLs.
pub fn release_version(v: &str) -> Result<(), ValidationError> {
    version_chars("version", v, MAX_VERSION)?;
    if !v.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(ValidationError::new(
            "version",
            "must start with a letter or digit",
        ));
    }
    Ok(())
}

/// How the runtimes of a cell run: the binary, the version it must report, extra flags and
/// dynamic config.
pub fn runtime_release(rt: &RuntimeRelease) -> Result<(), ValidationError> {
    version_chars("runtime.version", &rt.version, MAX_RUNTIME_VERSION)?;
    if let Some(b) = &rt.binary {
        binary(b)?;
    }
    flags(&rt.flags)?;
    dynamic_config_keys(rt.dynamic_config.keys())
}

/// The agent's intervals, each within a range that keeps reports timely without flooding the
/// control plane.
pub fn agent_release(a: &AgentRelease) -> Result<(), ValidationError> {
    for (field, value, range) in [
        (
            "agent.report_interval_ms",
            a.report_interval_ms,
            REPORT_INTERVAL_MS,
        ),
        (
            "agent.canary_interval_ms",
            a.canary_interval_ms,
            CANARY_INTERVAL_MS,
        ),
    ] {
        if let Some(v) = value
            && !range.contains(&v)
        {
            return Err(ValidationError::new(
                field,
                format!(
                    "must be between {} and {} milliseconds",
                    range.start(),
                    range.end()
                ),
            ));
        }
    }
    Ok(())
}

/// 1 to `max` characters of letters, digits, `.`, `+` and `-`.
fn version_chars(field: &'static str, v: &str, max: usize) -> Result<(), ValidationError> {
    if v.is_empty() {
        return Err(ValidationError::new(field, "is required"));
    }
    if let Some(c) = v
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '-')))
    {
        return Err(ValidationError::new(
            field,
            format!("may contain only letters, digits, '.', '+' and '-', found {c:?}"),
        ));
    }
    // ASCII only from here: bytes are characters.
    if v.len() > max {
        return Err(ValidationError::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    Ok(())
}

fn binary(b: &str) -> Result<(), ValidationError> {
    let bad = |m: &str| Err(ValidationError::new("runtime.binary", m.to_string()));
    if b.contains('\0') {
        return bad("must not contain NUL");
    }
    if b.chars().any(char::is_control) {
        return bad("must not contain control characters");
    }
    if b.chars().count() > MAX_BINARY {
        return bad(&format!("must be at most {MAX_BINARY} characters"));
    }
    if !b.starts_with('/') {
        return bad("must be an absolute path, e.g. /opt/temporal/1.9.1/temporal");
    }
    if b.split('/').any(|segment| segment == "..") {
        return bad("must not contain '..' segments");
    }
    if b.ends_with('/') || b.ends_with("/.") {
        return bad("must name a file, not a directory");
    }
    Ok(())
}

/// Extra flags: `--name`, `--name=value`, or `--name` followed by its value as the next entry.
fn flags(flags: &[String]) -> Result<(), ValidationError> {
    if flags.len() > MAX_FLAGS {
        return Err(ValidationError::new(
            "runtime.flags",
            format!("must have at most {MAX_FLAGS} entries"),
        ));
    }
    // Whether the previous entry was a flag that may take the next entry as its value.
    let mut value_may_follow = false;
    for (i, f) in flags.iter().enumerate() {
        let bad = |m: String| Err(ValidationError::new(format!("runtime.flags[{i}]"), m));
        if f.is_empty() || f.chars().count() > MAX_FLAG {
            return bad(format!("must be 1 to {MAX_FLAG} characters"));
        }
        if f.chars().any(char::is_control) {
            return bad("must not contain control characters".into());
        }
        let Some(rest) = f.strip_prefix('-') else {
            if !value_may_follow {
                return bad(format!(
                    "{f:?} is neither a flag (--name) nor the value of the flag before it"
                ));
            }
            value_may_follow = false;
            continue;
        };
        let Some(spec) = rest.strip_prefix('-') else {
            return bad(format!(
                "{f:?} must start with '--' (short flags are refused; write a negative value as --name=-1)"
            ));
        };
        let (name, inline_value) = match spec.split_once('=') {
            Some((name, _)) => (name, true),
            None => (spec, false),
        };
        if !name.starts_with(|c: char| c.is_ascii_alphanumeric())
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return bad(format!(
                "{f:?}: a flag name is letters, digits, '-', '_' and '.' after '--'"
            ));
        }
        if AGENT_OWNED_FLAGS
            .iter()
            .any(|owned| owned[2..].eq_ignore_ascii_case(name))
        {
            return bad(format!(
                "--{name} is set by the cell agent itself and cannot be part of a release"
            ));
        }
        value_may_follow = !inline_value;
    }
    Ok(())
}

fn dynamic_config_keys<'a>(
    keys: impl ExactSizeIterator<Item = &'a String>,
) -> Result<(), ValidationError> {
    let field = "runtime.dynamic_config";
    if keys.len() > MAX_DYNAMIC_CONFIG_KEYS {
        return Err(ValidationError::new(
            field,
            format!("must have at most {MAX_DYNAMIC_CONFIG_KEYS} keys"),
        ));
    }
    for key in keys {
        let valid = key.len() <= MAX_DYNAMIC_CONFIG_KEY
            && key.starts_with(|c: char| c.is_ascii_alphabetic())
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_'));
        if !valid {
            let shown: String = key.chars().take(40).collect();
            let ellipsis = if shown.len() < key.len() { "…" } else { "" };
            return Err(ValidationError::new(
                field,
                format!(
                    "key {shown:?}{ellipsis} must start with a letter and have only letters, \
                     digits, '.' and '_', at most {MAX_DYNAMIC_CONFIG_KEY} characters \
                     (e.g. frontend.rps)"
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn ok_release() -> CreateRelease {
        CreateRelease {
            version: "2026.11.1".into(),
            runtime: RuntimeRelease {
                binary: Some("/opt/temporal/1.9.1/temporal".into()),
                version: "1.9.1".into(),
                flags: vec![
                    "--log-level".into(),
                    "warn".into(),
                    "--log-format=json".into(),
                ],
                dynamic_config: BTreeMap::from([
                    ("frontend.rps".into(), serde_json::json!(2400)),
                    (
                        "history.enableReplicationStream".into(),
                        serde_json::json!(true),
                    ),
                    (
                        "limit.blobSize.error".into(),
                        serde_json::json!([{"value": 1, "constraints": {}}]),
                    ),
                ]),
            },
            agent: AgentRelease {
                report_interval_ms: Some(3000),
                canary_interval_ms: Some(5000),
            },
            notes: Some("first release".into()),
        }
    }

    /// The field of the error `f` makes of a good release, or `None` if it stays valid.
    fn field_of(f: impl FnOnce(&mut CreateRelease)) -> Option<String> {
        let mut r = ok_release();
        f(&mut r);
        release(&r).err().map(|e| e.field.into_owned())
    }

    #[test]
    fn a_complete_release_and_a_minimal_one_pass() {
        assert_eq!(release(&ok_release()), Ok(()));
        let minimal = CreateRelease {
            version: "1".into(),
            runtime: RuntimeRelease {
                version: "1.9.1".into(),
                ..Default::default()
            },
            agent: AgentRelease::default(),
            notes: None,
        };
        assert_eq!(release(&minimal), Ok(()));
    }

    #[test]
    fn versions() {
        for ok in [
            "1",
            "2026.11.1",
            "1.32.0-tessera.2",
            "v1+build.7",
            &"a".repeat(64),
        ] {
            assert_eq!(release_version(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "-1",
            ".1",
            "+1",
            "1/2",
            "1 2",
            "1_2",
            "é1",
            &"a".repeat(65),
        ] {
            assert_eq!(
                field_of(|r| r.version = bad.into()).as_deref(),
                Some("version"),
                "{bad:?}"
            );
        }
        let err = release_version("-1").unwrap_err();
        assert!(err.message.contains("start with"), "{}", err.message);
    }

    #[test]
    fn runtime_versions() {
        assert_eq!(
            field_of(|r| r.runtime.version = "v1.9.1-rc.1+x".into()),
            None
        );
        assert_eq!(field_of(|r| r.runtime.version = "-1".into()), None);
        assert_eq!(field_of(|r| r.runtime.version = "a".repeat(32)), None);
        for bad in ["", "1 9", "1_9", &"a".repeat(33)] {
            assert_eq!(
                field_of(|r| r.runtime.version = bad.into()).as_deref(),
                Some("runtime.version"),
                "{bad:?}"
            );
        }
        let err = runtime_release(&RuntimeRelease::default()).unwrap_err();
        assert_eq!(
            (err.field.as_ref(), err.message.as_str()),
            ("runtime.version", "is required")
        );
    }

    #[test]
    fn binaries() {
        assert_eq!(field_of(|r| r.runtime.binary = None), None);
        assert_eq!(
            field_of(|r| r.runtime.binary = Some(format!("/{}", "a".repeat(511)))),
            None
        );
        assert_eq!(
            field_of(|r| r.runtime.binary = Some("/opt/./temporal".into())),
            None
        );
        assert_eq!(
            field_of(|r| r.runtime.binary = Some("/opt/..temporal".into())),
            None
        );
        for bad in [
            "",
            "temporal",
            "./temporal",
            "bin/temporal",
            "/opt/../bin/temporal",
            "/opt/temporal/..",
            "/opt/tem\0poral",
            "/opt/tem\nporal",
            "/opt/temporal/",
            "/",
            &format!("/{}", "a".repeat(512)),
        ] {
            assert_eq!(
                field_of(|r| r.runtime.binary = Some(bad.into())).as_deref(),
                Some("runtime.binary"),
                "{bad:?}"
            );
        }
    }

    fn flags_field(flags: &[&str]) -> Option<String> {
        field_of(|r| r.runtime.flags = flags.iter().map(|f| f.to_string()).collect())
    }

    #[test]
    fn flags_and_their_values() {
        for ok in [
            &[][..],
            &["--log-level", "warn"],
            &["--log-level=warn", "--dynamic-config-value", "a.b=1"],
            &[
                "--search-attribute",
                "CustomerId=Keyword",
                "--log-level",
                "warn",
            ],
            &["--some-int=-1"],
            &["--flag-without-value", "--another"],
            &["--log-level", "warn=with=equals"],
        ] {
            assert_eq!(flags_field(ok), None, "{ok:?}");
        }
        for (bad, at) in [
            (&["warn"][..], "runtime.flags[0]"),
            (&["--log-level", "warn", "debug"], "runtime.flags[2]"),
            (&["--log-level=warn", "debug"], "runtime.flags[1]"),
            (&["-n", "x"], "runtime.flags[0]"),
            (&["--log-level", "-1"], "runtime.flags[1]"),
            (&["--"], "runtime.flags[0]"),
            (&["--=x"], "runtime.flags[0]"),
            (&["---log-level"], "runtime.flags[0]"),
            (&["--log level"], "runtime.flags[0]"),
            (&["--log-level", ""], "runtime.flags[1]"),
            (&["--log-level", "a\nb"], "runtime.flags[1]"),
        ] {
            assert_eq!(flags_field(bad).as_deref(), Some(at), "{bad:?}");
        }
        let long = format!("--x={}", "a".repeat(253));
        assert_eq!(flags_field(&[&long[..255]]), None);
        assert_eq!(flags_field(&[&long]).as_deref(), Some("runtime.flags[0]"));
        let many = vec!["--a"; 33];
        assert_eq!(flags_field(&many).as_deref(), Some("runtime.flags"));
        assert_eq!(flags_field(&many[..32]), None);
    }

    #[test]
    fn flags_the_agent_sets_are_refused_in_every_form() {
        for owned in AGENT_OWNED_FLAGS {
            for form in [
                owned.to_string(),
                format!("{owned}=1"),
                owned.to_ascii_uppercase(),
            ] {
                let err = release(&CreateRelease {
                    runtime: RuntimeRelease {
                        flags: vec!["--log-level".into(), "warn".into(), form.clone()],
                        ..ok_release().runtime
                    },
                    ..ok_release()
                })
                .unwrap_err();
                assert_eq!(err.field, "runtime.flags[2]", "{form}");
                assert!(err.message.contains("cell agent"), "{}", err.message);
            }
        }
        // Only the exact names: a longer flag that shares a prefix is someone else's.
        assert_eq!(flags_field(&["--port-range", "1"]), None);
        assert_eq!(flags_field(&["--log-config", "x"]), None);
        // A value position does not smuggle one in either.
        assert_eq!(
            flags_field(&["--log-level", "--port=7233"]).as_deref(),
            Some("runtime.flags[1]")
        );
    }

    #[test]
    fn dynamic_config_keys_and_any_json_values() {
        assert_eq!(
            field_of(|r| {
                r.runtime
                    .dynamic_config
                    .insert("a".into(), serde_json::json!({"nested": [1, "x", null]}));
                r.runtime
                    .dynamic_config
                    .insert(format!("k{}", "a".repeat(127)), serde_json::json!("s"));
            }),
            None
        );
        for bad in [
            "",
            "1abc",
            "_a",
            ".a",
            "a-b",
            "a b",
            "a/b",
            &format!("k{}", "a".repeat(128)),
        ] {
            assert_eq!(
                field_of(|r| {
                    r.runtime
                        .dynamic_config
                        .insert(bad.into(), serde_json::json!(1));
                })
                .as_deref(),
                Some("runtime.dynamic_config"),
                "{bad:?}"
            );
        }
        let many = |n: usize| {
            field_of(|r| {
                r.runtime.dynamic_config = (0..n)
                    .map(|i| (format!("k{i}"), serde_json::json!(i)))
                    .collect()
            })
        };
        assert_eq!(many(64), None);
        assert_eq!(many(65).as_deref(), Some("runtime.dynamic_config"));
    }

    #[test]
    fn agent_intervals() {
        for (report, canary, field) in [
            (Some(500), Some(1000), None),
            (Some(60_000), Some(600_000), None),
            (None, None, None),
            (Some(499), None, Some("agent.report_interval_ms")),
            (Some(60_001), None, Some("agent.report_interval_ms")),
            (None, Some(999), Some("agent.canary_interval_ms")),
            (None, Some(600_001), Some("agent.canary_interval_ms")),
            (Some(0), Some(0), Some("agent.report_interval_ms")),
        ] {
            assert_eq!(
                field_of(|r| {
                    r.agent = AgentRelease {
                        report_interval_ms: report,
                        canary_interval_ms: canary,
                    }
                })
                .as_deref(),
                field,
                "{report:?} {canary:?}"
            );
        }
    }

    #[test]
    fn notes() {
        assert_eq!(field_of(|r| r.notes = Some("é".repeat(2000))), None);
        assert_eq!(
            field_of(|r| r.notes = Some("é".repeat(2001))).as_deref(),
            Some("notes")
        );
    }
}

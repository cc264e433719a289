use super::*;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn error(toml: &str) -> String {
    match RingsFile::parse(toml) {
        Ok(file) => panic!("accepted: {file:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn the_shipped_dev_file_parses_to_canary_early_broad() {
    let file = RingsFile::parse(DEV_RINGS_TOML).unwrap();
    let rings = file.rings();
    let names: Vec<&str> = rings.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["canary", "early", "broad"]);

    let canary = &rings[0];
    assert_eq!(canary.cells, CellSelector::Ring(0));
    assert_eq!(canary.batch, Batch::Count(1));
    assert_eq!(canary.bake, secs(30));
    assert_eq!(canary.bake_after_ring, secs(30));
    assert!(!canary.approval);

    let early = &rings[1];
    assert_eq!(early.cells, CellSelector::Ring(1));
    assert_eq!(early.batch, Batch::Count(1));
    assert_eq!(early.bake, secs(30));
    assert!(!early.approval);

    let broad = &rings[2];
    assert_eq!(broad.cells, CellSelector::RingAtLeast(2));
    assert_eq!(broad.batch, Batch::Percent(50));
    assert!(broad.approval);
    for ring in rings {
        assert_eq!(ring.gates, Gates::default(), "{}", ring.name);
    }
}

#[test]
fn from_path_reads_the_shipped_file_and_names_the_file_in_errors() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("rings.toml");
    assert_eq!(
        RingsFile::from_path(&path).unwrap(),
        RingsFile::parse(DEV_RINGS_TOML).unwrap()
    );
    let missing = Path::new(env!("CARGO_MANIFEST_DIR")).join("no-such-rings.toml");
    let err = RingsFile::from_path(&missing).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("cannot read {}: ", missing.display())),
        "{err}"
    );
    let bad = std::env::temp_dir().join(format!("tessera-rings-test-{}.toml", std::process::id()));
    std::fs::write(
        &bad,
        "[[ring]]\nname = \"x\"\ncells = { ring = 1 }\nbatch = \"0%\"\n",
    )
    .unwrap();
    let err = RingsFile::from_path(&bad).unwrap_err().to_string();
    std::fs::remove_file(&bad).unwrap();
    assert_eq!(
        err,
        format!(
            r#"{}: ring "x" (#1): batch "0%" must be between 1% and 100%"#,
            bad.display()
        )
    );
}

#[test]
fn defaults_apply_key_by_key_and_rings_override_them() {
    let file = RingsFile::parse(
        r#"
        [defaults]
        batch = "25%"
        bake = "10m"
        bake_after_ring = "1h"
        approval = true
        gates = { runtime_error_rate_max = 0.05, min_requests = 100 }

        [[ring]]
        name = "inherits"
        cells = { ring = 1 }

        [[ring]]
        name = "overrides"
        cells = { ring = 2 }
        batch = 3
        bake = "1m30s"
        bake_after_ring = "0s"
        approval = false
        gates = { canary_success_rate_min = 1.0, min_requests = 0 }
        "#,
    )
    .unwrap();
    let [inherits, overrides] = file.rings() else {
        panic!("two rings expected");
    };
    assert_eq!(inherits.batch, Batch::Percent(25));
    assert_eq!(inherits.bake, secs(600));
    assert_eq!(inherits.bake_after_ring, secs(3_600));
    assert!(inherits.approval);
    assert_eq!(
        inherits.gates,
        Gates {
            runtime_healthy: true,
            canary_success_rate_min: 0.99,
            runtime_error_rate_max: 0.05,
            min_requests: 100,
        }
    );
    assert_eq!(overrides.batch, Batch::Count(3));
    assert_eq!(overrides.bake, secs(90));
    assert_eq!(overrides.bake_after_ring, secs(0));
    assert!(!overrides.approval);
    assert_eq!(
        overrides.gates,
        Gates {
            runtime_healthy: true,
            canary_success_rate_min: 1.0,
            runtime_error_rate_max: 0.05,
            min_requests: 0,
        }
    );
}

#[test]
fn built_in_defaults_fill_a_minimal_file() {
    let file = RingsFile::parse("[[ring]]\nname = \"only\"\ncells = { ring = 0 }\n").unwrap();
    let ring = &file.rings()[0];
    assert_eq!(ring.batch, Batch::Count(1));
    assert_eq!(ring.bake, secs(120));
    assert_eq!(ring.bake_after_ring, secs(300));
    assert!(!ring.approval);
    assert_eq!(ring.gates, Gates::default());
}

#[test]
fn selectors() {
    let file = RingsFile::parse(
        r#"
        [[ring]]
        name = "zero"
        cells = { ring = 0 }
        [[ring]]
        name = "gold"
        cells = { labels = { tier = "gold", zone = "east" } }
        [[ring]]
        name = "rest"
        cells = { ring_at_least = 1 }
        "#,
    )
    .unwrap();
    let selectors: Vec<&CellSelector> = file.rings().iter().map(|r| &r.cells).collect();
    assert_eq!(
        selectors,
        [
            &CellSelector::Ring(0),
            &CellSelector::Labels(BTreeMap::from([
                ("tier".into(), "gold".into()),
                ("zone".into(), "east".into())
            ])),
            &CellSelector::RingAtLeast(1),
        ]
    );
}

/// A one-ring file whose ring has `body` after its name.
fn ring(name: &str, body: &str) -> String {
    format!("[[ring]]\nname = \"{name}\"\ncells = {{ ring = 1 }}\n{body}\n")
}

#[test]
fn invalid_values_are_refused_with_where_and_why() {
    let two_rings = |body: &str| {
        format!(
            "[[ring]]\nname = \"canary\"\ncells = {{ ring = 0 }}\n\n{}",
            ring("early", body)
        )
    };
    let cases: Vec<(String, &str)> = vec![
        (
            two_rings("batch = \"0%\""),
            r#"ring "early" (#2): batch "0%" must be between 1% and 100%"#,
        ),
        (
            two_rings("batch = \"101%\""),
            r#"ring "early" (#2): batch "101%" must be between 1% and 100%"#,
        ),
        (
            ring("x", "batch = \"12.5%\""),
            r#"ring "x" (#1): batch "12.5%" must be a count like 2 or a percentage like "25%""#,
        ),
        (
            ring("x", "batch = \"half\""),
            r#"ring "x" (#1): batch "half" must be a count like 2 or a percentage like "25%""#,
        ),
        (
            ring("x", "batch = 1.5"),
            r#"ring "x" (#1): batch 1.5 must be a count like 2 or a percentage like "25%""#,
        ),
        (
            ring("x", "batch = 0"),
            r#"ring "x" (#1): batch 0 must be at least 1"#,
        ),
        (
            ring("x", "batch = -2"),
            r#"ring "x" (#1): batch -2 must be at least 1"#,
        ),
        (
            ring("x", "bake = \"5 minutes\""),
            r#"ring "x" (#1): bake "5 minutes" is not a duration (use e.g. 30s, 5m, 1h30m)"#,
        ),
        (
            ring("x", "bake_after_ring = \"1h 30m\""),
            r#"ring "x" (#1): bake_after_ring "1h 30m" is not a duration (use e.g. 30s, 5m, 1h30m)"#,
        ),
        (
            ring("x", "bake = \"31d\""),
            r#"ring "x" (#1): bake "31d" is longer than 30d"#,
        ),
        (
            ring("x", "gates = { canary_success_rate_min = 1.5 }"),
            r#"ring "x" (#1): gates.canary_success_rate_min must be between 0 and 1, got 1.5"#,
        ),
        (
            ring("x", "gates = { runtime_error_rate_max = -0.1 }"),
            r#"ring "x" (#1): gates.runtime_error_rate_max must be between 0 and 1, got -0.1"#,
        ),
        (
            ring("x", "gates = { runtime_error_rate_max = nan }"),
            r#"ring "x" (#1): gates.runtime_error_rate_max must be between 0 and 1, got NaN"#,
        ),
        (
            format!(
                "[defaults.gates]\ncanary_success_rate_min = 2\n\n{}",
                ring("x", "")
            ),
            "defaults: gates.canary_success_rate_min must be between 0 and 1, got 2",
        ),
        (
            format!("[defaults]\nbake = \"forever\"\n\n{}", ring("x", "")),
            r#"defaults: bake "forever" is not a duration (use e.g. 30s, 5m, 1h30m)"#,
        ),
        (
            format!("[defaults]\nbatch = \"0%\"\n\n{}", ring("x", "")),
            r#"defaults: batch "0%" must be between 1% and 100%"#,
        ),
        (
            format!(
                "{}{}[[ring]]\ncells = {{ ring = 5 }}\n",
                ring("a", ""),
                two_rings("")
            ),
            "ring #4: missing name",
        ),
        (
            "[[ring]]\nname = \"Early Ring\"\ncells = { ring = 1 }\n".into(),
            r#"ring #1: name "Early Ring" must start with a lowercase letter"#,
        ),
        (
            "[[ring]]\nname = \"x\"\n".into(),
            r#"ring "x" (#1): missing cells (e.g. cells = { ring = 1 })"#,
        ),
        (
            "[[ring]]\nname = \"x\"\ncells = { ring = 1, ring_at_least = 2 }\n".into(),
            r#"ring "x" (#1): cells must have exactly one of ring, ring_at_least or labels (e.g. cells = { ring = 1 })"#,
        ),
        (
            "[[ring]]\nname = \"x\"\ncells = {}\n".into(),
            r#"ring "x" (#1): cells must have exactly one of ring, ring_at_least or labels (e.g. cells = { ring = 1 })"#,
        ),
        (
            "[[ring]]\nname = \"x\"\ncells = { labels = {} }\n".into(),
            r#"ring "x" (#1): cells.labels must name at least one label"#,
        ),
        (
            "[[ring]]\nname = \"x\"\ncells = { labels = { Tier = \"gold\" } }\n".into(),
            r#"ring "x" (#1): cells.labels key "Tier" must start with a lowercase letter"#,
        ),
        (
            two_rings("").replace("early", "canary"),
            r#"duplicate ring name "canary""#,
        ),
        (
            "[defaults]\nbake = \"1m\"\n".into(),
            "the file defines no rings",
        ),
        ("".into(), "the file defines no rings"),
    ];
    for (toml, message) in cases {
        assert_eq!(error(&toml), message, "for:\n{toml}");
    }
}

#[test]
fn rings_selecting_the_same_ring_number_are_refused() {
    let file = |a: &str, b: &str| {
        format!("[[ring]]\nname = \"a\"\ncells = {a}\n[[ring]]\nname = \"b\"\ncells = {b}\n")
    };
    let cases = [
        (
            "{ ring = 1 }",
            "{ ring = 1 }",
            r#"ring "a" and ring "b" both select ring 1"#,
        ),
        (
            "{ ring = 3 }",
            "{ ring_at_least = 2 }",
            r#"ring "a" and ring "b" both select ring 3"#,
        ),
        (
            "{ ring_at_least = 2 }",
            "{ ring = 4 }",
            r#"ring "a" and ring "b" both select ring 4"#,
        ),
        (
            "{ ring_at_least = 2 }",
            "{ ring_at_least = 5 }",
            r#"ring "a" and ring "b" both select ring 5"#,
        ),
    ];
    for (a, b, message) in cases {
        assert_eq!(error(&file(a, b)), message, "{a} / {b}");
    }
    // Disjoint: accepted.
    RingsFile::parse(&file("{ ring = 1 }", "{ ring_at_least = 2 }")).unwrap();
    // Label selectors cannot be checked before the cells are known (see plan).
    RingsFile::parse(&file("{ ring = 1 }", "{ labels = { tier = \"gold\" } }")).unwrap();
}

#[test]
fn rings_selected_by_number_must_come_lowest_first() {
    let toml = r#"
        [[ring]]
        name = "early"
        cells = { ring = 1 }
        [[ring]]
        name = "gold"
        cells = { labels = { tier = "gold" } }
        [[ring]]
        name = "canary"
        cells = { ring = 0 }
    "#;
    assert_eq!(
        error(toml),
        r#"ring "canary" (#3): selects ring 0, lower than ring 1 of ring "early" (#1) listed before it: rings roll out in file order, so list lower ring numbers first"#
    );
}

#[test]
fn toml_errors_say_which_line() {
    let cases = [
        (
            "[[ring]]\nname = \"x\"\ncells = { ring = 1 }\nbake = 5m\n",
            "line 4, column 8: string values must be quoted",
        ),
        (
            "[[ring]]\nname = \"x\"\ncells = { ring = 1 }\nbakee = \"5m\"\n",
            "line 4, column 1: unknown field `bakee`, expected one of ",
        ),
        (
            "[[ring]]\nname = \"x\"\ncells = { ring = 1 }\ngates = { min_request = 3 }\n",
            "line 4, column 11: unknown field `min_request`, expected one of ",
        ),
        (
            "[[ring]]\nname = \"x\"\ncells = { ring = -1 }\n",
            "line 3, column 18: invalid value: integer `-1`, expected u32",
        ),
        (
            "[[ring]]\nname = \"x\"\ncells = { ring = 1 }\napproval = \"yes\"\n",
            "line 4, column 12: invalid type: string \"yes\", expected a boolean",
        ),
        (
            "[defaults]\nbake = 30\n[[ring]]\nname = \"x\"\ncells = { ring = 1 }\n",
            "line 2, column 8: invalid type: integer `30`, expected a string",
        ),
        (
            "[ring]\nname = \"x\"\ncells = { ring = 1 }\n",
            "line 1, column 1: invalid type: map, expected a sequence",
        ),
    ];
    for (toml, start) in cases {
        let message = error(toml);
        assert!(
            message.starts_with(start),
            "{message:?} should start with {start:?}"
        );
    }
}

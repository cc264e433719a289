//! Releases on real Temporal runtimes: the supervisor moves a cell's runtimes to a new release
//! one at a time, stops at the first runtime a bad release breaks (the others keep serving on
//! the old one), and goes back at once when the release is rolled back.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tessera_api::agent::{RuntimeHealth, RuntimeObserved, RuntimeSpec};
use tessera_api::{ReleaseSpec, RuntimeRelease};
use tessera_cell_agent::runtime::Supervisor;
use tokio::sync::Notify;

fn release(version: &str, runtime_version: &str, flags: &[&str]) -> ReleaseSpec {
    ReleaseSpec {
        version: version.into(),
        runtime: RuntimeRelease {
            binary: None,
            version: runtime_version.into(),
            flags: flags.iter().map(|f| f.to_string()).collect(),
            dynamic_config: BTreeMap::from([(
                "limit.maxIDLength".to_string(),
                serde_json::json!(600),
            )]),
        },
        agent: Default::default(),
    }
}

/// Re-applies `release` as the agent's reconcile loop does, sampling the runtimes, until `done`.
/// Returns the most runtimes ever seen not serving at once.
async fn drive(
    sup: &Supervisor,
    desired: &BTreeMap<String, RuntimeSpec>,
    release: Option<&ReleaseSpec>,
    what: &str,
    done: impl Fn(&BTreeMap<String, RuntimeObserved>) -> bool,
) -> usize {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut most_down = 0;
    loop {
        sup.apply(desired, release);
        let observed = sup.observed();
        most_down = most_down.max(
            observed
                .values()
                .filter(|r| r.health != RuntimeHealth::Serving)
                .count(),
        );
        if done(&observed) {
            return most_down;
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not happen: {observed:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn on(observed: &BTreeMap<String, RuntimeObserved>, version: Option<&str>) -> bool {
    observed
        .values()
        .all(|r| r.health == RuntimeHealth::Serving && r.release.as_deref() == version)
}

fn pids(observed: &BTreeMap<String, RuntimeObserved>) -> BTreeMap<String, u32> {
    observed
        .iter()
        .map(|(id, r)| (id.clone(), r.pid.unwrap_or(0)))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn releases_roll_one_runtime_at_a_time_and_a_bad_one_stops_at_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let sup = Supervisor::new(dir.path(), "temporal".into(), Arc::new(Notify::new()));
    let desired: BTreeMap<String, RuntimeSpec> = ["ns-a", "ns-b", "ns-c"]
        .into_iter()
        .map(|id| {
            (
                id.to_string(),
                RuntimeSpec {
                    temporal_namespace: format!("{id}.acme"),
                    global_namespace: false,
                    dynamic_config: Default::default(),
                },
            )
        })
        .collect();
    let version = tessera_system_tests::temporal_cli_version();

    drive(&sup, &desired, None, "three runtimes serving", |o| {
        o.len() == 3 && on(o, None)
    })
    .await;

    // A good release: every runtime restarts on it, never two at once.
    let good = release(
        "r1",
        &version,
        &["--search-attribute", "TesseraRelease=Keyword"],
    );
    let before = pids(&sup.observed());
    let most_down = drive(&sup, &desired, Some(&good), "every runtime on r1", |o| {
        on(o, Some("r1"))
    })
    .await;
    assert_eq!(most_down, 1, "runtimes restart one at a time");
    let after = pids(&sup.observed());
    for (id, pid) in &before {
        assert_ne!(after[id], *pid, "{id} was restarted on the release");
    }

    // A bad release (a flag the server refuses): the first runtime it reaches fails, and the
    // others stay on r1, serving, with the same processes.
    let bad = release("r2", &version, &["--no-such-flag"]);
    drive(
        &sup,
        &desired,
        Some(&bad),
        "one runtime failing on r2",
        |o| {
            o.values()
                .any(|r| r.release.as_deref() == Some("r2") && r.restarts >= 1)
        },
    )
    .await;
    // Keep reconciling a while: the rollout must not spread past the broken runtime.
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        sup.apply(&desired, Some(&bad));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let observed = sup.observed();
    let broken: Vec<_> = observed
        .iter()
        .filter(|(_, r)| r.release.as_deref() == Some("r2"))
        .collect();
    assert_eq!(broken.len(), 1, "{observed:#?}");
    let broken_id = broken[0].0.clone();
    assert_ne!(broken[0].1.health, RuntimeHealth::Serving);
    for (id, r) in observed.iter().filter(|(id, _)| *id != broken[0].0) {
        assert_eq!(r.release.as_deref(), Some("r1"), "{id}");
        assert_eq!(r.health, RuntimeHealth::Serving, "{id}");
        assert_eq!(r.pid, Some(after[id]), "{id} was not touched");
    }

    // Rolled back: the broken runtime comes back on r1 at once.
    let t0 = Instant::now();
    drive(&sup, &desired, Some(&good), "back on r1", |o| {
        on(o, Some("r1"))
    })
    .await;
    println!("rolled back in {:.1} s", t0.elapsed().as_secs_f64());
    // Restarts are counted per release: the crashes on r2 do not follow the runtime back to
    // r1, where a later rollout would take them for a release that keeps failing.
    let back = &sup.observed()[broken_id.as_str()];
    assert_eq!(back.restarts, 0, "{back:#?}");

    // A release whose binary reports another version is refused before anything starts.
    let wrong = release("r3", "0.0.0-nope", &[]);
    drive(
        &sup,
        &desired,
        Some(&wrong),
        "the version check to refuse",
        |o| {
            o.values().any(|r| {
                r.last_error
                    .as_deref()
                    .is_some_and(|e| e.contains("wants version 0.0.0-nope"))
            })
        },
    )
    .await;
    drive(&sup, &desired, Some(&good), "back on r1 again", |o| {
        on(o, Some("r1"))
    })
    .await;

    let last = pids(&sup.observed());
    drive(&sup, &BTreeMap::new(), None, "every runtime removed", |o| {
        o.is_empty()
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while last
        .values()
        .any(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists())
    {
        assert!(Instant::now() < deadline, "runtime processes left behind");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

//! How long a tenant waits for a new namespace: from `POST /api/v1/namespaces` to the first
//! successful SDK call through the cell ingress (mTLS, the tenant's own CA), over 20 namespaces
//! created one by one and 10 created at once, on the real release binaries.
//!
//! `cargo build --release --workspace --bins && target/release/namespace-bench [--write BENCHMARKS.md]`
//! (`./dev bench` does both).

use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::json;
use tessera_pki::{CertificateAuthority, IssuedCert, Usage};
use tessera_system_tests::{Api, CellProcesses, ControlPlane, write_bench_section};
use tessera_workflows::probe::{ProbeTarget, describe};

#[derive(Parser)]
struct Args {
    /// Namespaces created one after another.
    #[arg(long, default_value_t = 20)]
    sequential: usize,
    /// Namespaces created at the same time.
    #[arg(long, default_value_t = 10)]
    concurrent: usize,
    /// Warm runtimes the cell keeps (the agent's `--warm-runtimes`; its default is 3).
    #[arg(long, default_value_t = 3)]
    warm_runtimes: usize,
    /// Spare stores the cell keeps (the agent's `--spare-stores`; its default is 8).
    #[arg(long, default_value_t = 8)]
    spare_stores: usize,
    /// Write the results as the "## Namespace creation" section of this markdown file.
    #[arg(long)]
    write: Option<std::path::PathBuf>,
}

/// Waits until the cell is at rest: its warm runtimes and spare stores ready, no runtime
/// starting.
async fn at_rest(admin: &Api, cell: &str, warm: usize, spares: usize) {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let c = admin.get(&format!("/admin/cells/{cell}")).await;
        let observed = &c["observed"];
        let starting = observed["runtimes"]
            .as_object()
            .map(|r| r.values().any(|r| r["health"] != "serving"))
            .unwrap_or(true);
        if observed["warm_runtimes"].as_u64() == Some(warm as u64)
            && observed["spare_stores"].as_u64() == Some(spares as u64)
            && !starting
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the cell never came to rest: {c}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

struct Tenant {
    api: Api,
    ca_pem: String,
    cert: IssuedCert,
    ingress: String,
}

/// Creates `name` and returns the time until the first SDK call through the ingress succeeded.
async fn create_and_call(t: &Tenant, name: &str) -> Duration {
    let start = Instant::now();
    let (s, v) = t
        .api
        .post(
            "/namespaces",
            json!({"name": name, "region": "bench", "retention_days": 1,
                   "accepted_client_ca": t.ca_pem}),
        )
        .await;
    assert_eq!(s, 202, "create {name}: {v}");
    let root_pem = v["namespace"]["endpoint"]["server_root_ca_pem"]
        .as_str()
        .unwrap()
        .to_string();
    let host = v["namespace"]["endpoint"]["tls_server_name"]
        .as_str()
        .unwrap()
        .to_string();
    let namespace = v["namespace"]["endpoint"]["temporal_namespace"]
        .as_str()
        .unwrap()
        .to_string();
    loop {
        let target = ProbeTarget {
            address: &t.ingress,
            host: &host,
            server_root_pem: &root_pem,
            temporal_namespace: &namespace,
        };
        if describe(&target, &t.cert, "namespace-bench").await.is_ok() {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(180),
            "{name} never answered"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn delete_all(t: &Tenant, names: &[String]) {
    let mut ops = Vec::new();
    for n in names {
        let (s, v) = t.api.delete(&format!("/namespaces/{n}")).await;
        assert_eq!(s, 202, "delete {n}: {v}");
        ops.push(v["operation"]["id"].as_str().unwrap().to_string());
    }
    for op in ops {
        let done = t.api.wait_op(&op, Duration::from_secs(180)).await;
        assert_eq!(done["state"], "fulfilled", "{done}");
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

struct Row {
    scenario: String,
    samples: Vec<Duration>,
}

impl Row {
    fn cells(&self) -> (f64, f64, f64, f64) {
        let mut s = self.samples.clone();
        s.sort();
        let secs = |d: Duration| d.as_secs_f64();
        (
            secs(percentile(&s, 50.0)),
            secs(percentile(&s, 95.0)),
            secs(s[0]),
            secs(*s.last().unwrap()),
        )
    }
}

fn table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| scenario | namespaces | p50 | p95 | min | max | goal |\n|---|---:|---:|---:|---:|---:|---|\n",
    );
    for r in rows {
        let (p50, p95, min, max) = r.cells();
        let met = if p50 <= 3.0 && p95 <= 6.0 {
            "met"
        } else {
            "not met"
        };
        out.push_str(&format!(
            "| {} | {} | {p50:.2} s | {p95:.2} s | {min:.2} s | {max:.2} s | p50 ≤ 3 s, p95 ≤ 6 s: {met} |\n",
            r.scenario,
            r.samples.len()
        ));
    }
    out
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let data = tempfile::tempdir().unwrap();
    let _cells = CellProcesses(data.path().to_path_buf());
    eprintln!("starting the control plane and a cell…");
    let (warm, spares) = (
        args.warm_runtimes.to_string(),
        args.spare_stores.to_string(),
    );
    let cp = ControlPlane::start(
        data.path(),
        &[
            ("TESSERA_WARM_RUNTIMES", warm.as_str()),
            ("TESSERA_SPARE_STORES", spares.as_str()),
        ],
    )
    .await;
    let admin = Api::admin(&cp);
    admin.create_region("bench").await;
    let cell = admin.provision("bench", 1).await;
    let ingress = admin.get(&format!("/admin/cells/{cell}")).await["ingress_address"]
        .as_str()
        .unwrap()
        .to_string();
    let api = Api::signup(&cp, "bench").await;
    let ca = CertificateAuthority::generate_root("bench CA", chrono::Duration::days(1)).unwrap();
    let cert = ca
        .issue(
            "bench-worker",
            &[],
            Usage::Client,
            chrono::Duration::days(1),
        )
        .unwrap();
    let t = Tenant {
        api,
        ca_pem: ca.cert_pem.clone(),
        cert,
        ingress,
    };

    let mut rows = Vec::new();
    let mut seq = Vec::new();
    at_rest(&admin, &cell, args.warm_runtimes, args.spare_stores).await;
    for i in 0..args.sequential {
        let name = format!("seq{i}");
        let took = create_and_call(&t, &name).await;
        eprintln!("  {name}: {:.2} s", took.as_secs_f64());
        seq.push(took);
        delete_all(&t, &[name]).await;
    }
    rows.push(Row {
        scenario: "one at a time".into(),
        samples: seq,
    });

    at_rest(&admin, &cell, args.warm_runtimes, args.spare_stores).await;
    let names: Vec<String> = (0..args.concurrent).map(|i| format!("par{i}")).collect();
    let t = std::sync::Arc::new(t);
    let tasks: Vec<_> = names
        .iter()
        .cloned()
        .map(|n| {
            let t = t.clone();
            tokio::spawn(async move { create_and_call(&t, &n).await })
        })
        .collect();
    let mut par = Vec::new();
    for task in tasks {
        par.push(task.await.unwrap());
    }
    for (n, d) in names.iter().zip(&par) {
        eprintln!("  {n}: {:.2} s", d.as_secs_f64());
    }
    delete_all(&t, &names).await;
    rows.push(Row {
        scenario: format!("{} at once", args.concurrent),
        samples: par,
    });

    let table = table(&rows);
    println!("{table}");
    if let Some(path) = args.write {
        let section = format!(
            "## Namespace creation\n\n\
             `namespace-bench` (run by `./dev bench`): the release control plane, one local cell \
             (ring 1) on this machine, a tenant with its own CA. Each sample is the time from \
             `POST /api/v1/namespaces` to the first successful SDK call (`DescribeNamespace` with \
             `temporalio-client`) through the cell ingress over mTLS; the client retries every \
             20 ms. Namespaces of the one-at-a-time run are deleted after each sample. The cell \
             keeps {} warm runtimes and {} spare stores (the agent's defaults are 3 and 8); \
             each run starts once the cell is at rest (both pools full, no runtime starting).\n\n{table}",
            args.warm_runtimes, args.spare_stores
        );
        write_bench_section(&path, &section);
    }
}

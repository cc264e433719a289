//! Measures the ingress against direct connections to the same upstreams and reports whether it
//! meets its goals (≥90% of direct throughput, ≤0.2 ms added median latency).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use tessera_ingress::bench::{self, BenchConfig, Machine};

#[derive(Parser, Debug)]
#[command(about = "Benchmark the Tessera ingress against direct connections")]
struct Args {
    /// Seconds each throughput measurement runs.
    #[arg(long, env = "TESSERA_BENCH_DURATION_SECS", default_value_t = 5)]
    duration_secs: u64,
    /// A short run (about 1 s per measurement, 256 MiB streamed) for smoke checks.
    #[arg(long, env = "TESSERA_BENCH_QUICK")]
    quick: bool,
    /// Worker threads of the ingress's own runtime (client and upstreams share the other one).
    #[arg(long, env = "TESSERA_BENCH_INGRESS_THREADS", default_value_t = 1)]
    ingress_threads: usize,
    /// Write the results as the "## Ingress" section of this markdown file (e.g. BENCHMARKS.md),
    /// replacing that section if present.
    #[arg(long, env = "TESSERA_BENCH_WRITE")]
    write: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config = BenchConfig {
        ingress_threads: args.ingress_threads.max(1),
        ..if args.quick {
            BenchConfig::quick()
        } else {
            BenchConfig::full(Duration::from_secs(args.duration_secs.max(1)))
        }
    };
    let report = bench::run(&config).await?;
    let section = report.markdown(&Machine::detect());
    println!("{section}");
    if let Some(path) = args.write {
        let doc = match std::fs::read_to_string(&path) {
            Ok(doc) => doc,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        std::fs::write(&path, bench::replace_section(&doc, &section))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

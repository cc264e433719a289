//! The benchmark's numbers, the goals they are held to, and the markdown they are reported in.

use std::time::Duration;

use super::BenchConfig;

/// Through the ingress, throughput must stay at or above this share of direct throughput.
pub const THROUGHPUT_GOAL: f64 = 0.90;
/// Through the ingress, the median request may take at most this much longer than direct.
pub const ADDED_LATENCY_GOAL: Duration = Duration::from_micros(200);
/// What the edge may add to the median latency of a request through the ingress.
pub const EDGE_LATENCY_GOAL: Duration = Duration::from_micros(100);

/// Small HTTP/2 requests on one path.
#[derive(Clone, Debug)]
pub struct H2Numbers {
    pub requests_per_sec: f64,
    /// Of sequential single requests on one connection.
    pub p50: Duration,
    pub p99: Duration,
}

#[derive(Clone, Debug)]
pub struct BenchReport {
    pub config: BenchConfig,
    /// Cleartext straight to the upstream: the baseline the goals are stated against.
    pub h2_direct: H2Numbers,
    /// The ingress's mTLS straight to a TLS-terminating upstream: no extra hop.
    pub h2_direct_tls: H2Numbers,
    pub h2_ingress: H2Numbers,
    pub tcp_direct_mb_s: f64,
    pub tcp_direct_tls_mb_s: f64,
    pub tcp_ingress_mb_s: f64,
    /// The client's TLS passed through the ingress (forward route) to the direct-TLS upstream.
    pub h2_forward_rps: f64,
    pub tcp_forward_mb_s: f64,
    /// Sequential request latency (p50, p99) through an edge in front of the ingress.
    pub h2_edge_latency: (Duration, Duration),
    /// CPU time of the ingress's threads per request in the HTTP/2 throughput run.
    pub ingress_cpu_per_request: Duration,
    /// CPU time of the ingress's threads per 10^9 bytes in the streaming run.
    pub ingress_cpu_per_gb: Duration,
}

/// Where the numbers were taken.
#[derive(Clone, Debug)]
pub struct Machine {
    pub nproc: usize,
    pub cpu: String,
    pub date: String,
}

impl Machine {
    pub fn detect() -> Self {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_else(|| "unknown CPU".into());
        Self {
            nproc: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu,
            date: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
        }
    }
}

impl BenchReport {
    pub fn h2_throughput_ratio(&self) -> f64 {
        self.h2_ingress.requests_per_sec / self.h2_direct.requests_per_sec
    }

    pub fn tcp_throughput_ratio(&self) -> f64 {
        self.tcp_ingress_mb_s / self.tcp_direct_mb_s
    }

    /// Median latency through the ingress minus direct (zero if the ingress was faster).
    pub fn added_median_latency(&self) -> Duration {
        self.h2_ingress.p50.saturating_sub(self.h2_direct.p50)
    }

    pub fn h2_throughput_ratio_tls(&self) -> f64 {
        self.h2_ingress.requests_per_sec / self.h2_direct_tls.requests_per_sec
    }

    pub fn tcp_throughput_ratio_tls(&self) -> f64 {
        self.tcp_ingress_mb_s / self.tcp_direct_tls_mb_s
    }

    /// Median latency through the ingress minus direct TLS: the extra hop alone.
    pub fn added_median_latency_tls(&self) -> Duration {
        self.h2_ingress.p50.saturating_sub(self.h2_direct_tls.p50)
    }

    /// The results table alone.
    pub fn table(&self) -> String {
        let c = &self.config;
        let (d, dt, i) = (&self.h2_direct, &self.h2_direct_tls, &self.h2_ingress);
        let pct = |r: f64| format!("{:.1}%", 100.0 * r);
        let plus = |a: Duration, b: Duration| format!("+{}", ms(a.saturating_sub(b)));
        let mut t = String::from(
            "| measurement | direct | direct TLS | via ingress | ingress vs direct | ingress vs direct TLS |\n",
        );
        t += "|---|---:|---:|---:|---:|---:|\n";
        t += &format!(
            "| HTTP/2 64 B POST → 64 B, {} streams on {} connections | {:.0} req/s | {:.0} req/s | {:.0} req/s | {} | {} |\n",
            c.streams,
            c.connections,
            d.requests_per_sec,
            dt.requests_per_sec,
            i.requests_per_sec,
            pct(self.h2_throughput_ratio()),
            pct(self.h2_throughput_ratio_tls()),
        );
        for (name, get) in [
            ("p50", (|n: &H2Numbers| n.p50) as fn(&H2Numbers) -> Duration),
            ("p99", |n: &H2Numbers| n.p99),
        ] {
            t += &format!(
                "| HTTP/2 sequential request latency {name} | {} | {} | {} | {} | {} |\n",
                ms(get(d)),
                ms(get(dt)),
                ms(get(i)),
                plus(get(i), get(d)),
                plus(get(i), get(dt)),
            );
        }
        t += &format!(
            "| TCP stream, {} MiB in {} KiB writes | {:.0} MB/s | {:.0} MB/s | {:.0} MB/s | {} | {} |\n",
            c.stream_bytes >> 20,
            c.chunk_bytes >> 10,
            self.tcp_direct_mb_s,
            self.tcp_direct_tls_mb_s,
            self.tcp_ingress_mb_s,
            pct(self.tcp_throughput_ratio()),
            pct(self.tcp_throughput_ratio_tls()),
        );
        t += &format!(
            "| ingress CPU per HTTP/2 request / per GB streamed | – | – | {:.1} µs / {:.2} s | – | – |\n",
            self.ingress_cpu_per_request.as_secs_f64() * 1e6,
            self.ingress_cpu_per_gb.as_secs_f64()
        );
        t
    }

    /// The reference hop: TLS passed through untouched, compared with direct TLS.
    pub fn forward_table(&self) -> String {
        let pct = |r: f64| format!("{:.1}%", 100.0 * r);
        let mut t = String::from(
            "| measurement | direct TLS | through a forward route | forward vs direct TLS |\n|---|---:|---:|---:|\n",
        );
        t += &format!(
            "| HTTP/2 64 B POST → 64 B | {:.0} req/s | {:.0} req/s | {} |\n",
            self.h2_direct_tls.requests_per_sec,
            self.h2_forward_rps,
            pct(self.h2_forward_rps / self.h2_direct_tls.requests_per_sec),
        );
        t += &format!(
            "| TCP stream | {:.0} MB/s | {:.0} MB/s | {} |\n",
            self.tcp_direct_tls_mb_s,
            self.tcp_forward_mb_s,
            pct(self.tcp_forward_mb_s / self.tcp_direct_tls_mb_s),
        );
        t
    }

    /// What the edge adds in front of the ingress (the path every namespace endpoint takes).
    pub fn edge_table(&self) -> String {
        let (p50, p99) = self.h2_edge_latency;
        let added = p50.saturating_sub(self.h2_ingress.p50);
        let verdict = if added <= EDGE_LATENCY_GOAL {
            "pass"
        } else {
            "FAIL"
        };
        format!(
            "| measurement | via ingress | via edge → ingress | edge adds |\n|---|---:|---:|---:|\n\
             | HTTP/2 sequential request latency p50 | {} | {} | +{} |\n\
             | HTTP/2 sequential request latency p99 | {} | {} | +{} |\n\n\
             | goal | measured | result |\n|---|---:|---|\n\
             | edge added median latency ≤ {} | {} | {verdict} |\n",
            ms(self.h2_ingress.p50),
            ms(p50),
            ms(added),
            ms(self.h2_ingress.p99),
            ms(p99),
            ms(p99.saturating_sub(self.h2_ingress.p99)),
            ms(EDGE_LATENCY_GOAL),
            ms(added),
        )
    }

    /// The goals, each with its outcome.
    pub fn goals(&self) -> String {
        let verdict = |ok: bool| if ok { "pass" } else { "FAIL" };
        let h2 = self.h2_throughput_ratio();
        let tcp = self.tcp_throughput_ratio();
        let added = self.added_median_latency();
        let mut t = String::from("| goal | measured | result |\n|---|---:|---|\n");
        t += &format!(
            "| HTTP/2 throughput ≥ {:.0}% of direct | {:.1}% | {} |\n",
            100.0 * THROUGHPUT_GOAL,
            100.0 * h2,
            verdict(h2 >= THROUGHPUT_GOAL)
        );
        t += &format!(
            "| TCP stream throughput ≥ {:.0}% of direct | {:.1}% | {} |\n",
            100.0 * THROUGHPUT_GOAL,
            100.0 * tcp,
            verdict(tcp >= THROUGHPUT_GOAL)
        );
        t += &format!(
            "| added median latency ≤ {} | {} | {} |\n",
            ms(ADDED_LATENCY_GOAL),
            ms(added),
            verdict(added <= ADDED_LATENCY_GOAL)
        );
        let (h2, tcp, added) = (
            self.h2_throughput_ratio_tls(),
            self.tcp_throughput_ratio_tls(),
            self.added_median_latency_tls(),
        );
        t += &format!(
            "| *secondary view:* HTTP/2 throughput ≥ {:.0}% of direct TLS | {:.1}% | {} |\n",
            100.0 * THROUGHPUT_GOAL,
            100.0 * h2,
            verdict(h2 >= THROUGHPUT_GOAL)
        );
        t += &format!(
            "| *secondary view:* TCP stream throughput ≥ {:.0}% of direct TLS | {:.1}% | {} |\n",
            100.0 * THROUGHPUT_GOAL,
            100.0 * tcp,
            verdict(tcp >= THROUGHPUT_GOAL)
        );
        t += &format!(
            "| *secondary view:* added median latency vs direct TLS ≤ {} | {} | {} |\n",
            ms(ADDED_LATENCY_GOAL),
            ms(added),
            verdict(added <= ADDED_LATENCY_GOAL)
        );
        t
    }

    /// The "## Ingress" section of BENCHMARKS.md.
    pub fn markdown(&self, machine: &Machine) -> String {
        format!(
            "## Ingress\n\n\
             `cargo run --release -p tessera-ingress --bin ingress-bench`, {date}, {nproc} CPUs \
             ({cpu}). Client, ingress and upstreams run in one process on loopback and share those \
             CPUs; throughput measurements ran {secs:.1} s each.\n\n\
             Direct means cleartext to the upstream (h2c, plain TCP); via ingress means mTLS from \
             the client to the ingress (TLS 1.3, ALPN h2, client certificate), then cleartext from \
             the ingress to the upstream through a `Local` route. The ingress numbers therefore \
             include the client's TLS work as well as the ingress's. Direct TLS is the same mTLS \
             (same certificate, client-certificate check, ALPN and ciphers) spoken by the \
             upstream itself, with no ingress: the difference to it is the cost of the extra \
             hop alone. The goals are stated against cleartext direct; the rows marked \
             *secondary view* hold the same goals against direct TLS.\n\n\
             {table}\n\
             Goals:\n\n\
             {goals}\n\
             Reference, what any extra hop costs here: the same client TLS through the ingress's \
             forward route (layer 4: the ClientHello is read for its SNI, then bytes are only \
             copied, with no decryption) to the direct-TLS upstream.\n\n\
             {forward}\n\
             The edge (`tessera-edge`): an SNI pass-through router with the ingress's forward \
             route alone, in front of the ingress, as every namespace endpoint is reached. It \
             runs on the client's runtime here.\n\n\
             {edge}",
            date = machine.date,
            nproc = machine.nproc,
            cpu = machine.cpu,
            secs = self.config.duration.as_secs_f64(),
            table = self.table(),
            goals = self.goals(),
            forward = self.forward_table(),
            edge = self.edge_table(),
        )
    }
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

/// `doc` with its `## <title>` section replaced by `section` (whose first line is that heading),
/// or with `section` appended if there is none. The section runs to the next `## ` heading.
pub fn replace_section(doc: &str, section: &str) -> String {
    let heading = section.lines().next().unwrap_or_default().trim_end();
    let section = format!("{}\n", section.trim_end());
    let lines: Vec<&str> = doc.split_inclusive('\n').collect();
    let Some(start) = lines.iter().position(|l| l.trim_end() == heading) else {
        let mut out = doc.trim_end().to_string();
        if !out.is_empty() {
            out.push_str("\n\n");
        }
        out.push_str(&section);
        return out;
    };
    let end = lines[start + 1..]
        .iter()
        .position(|l| l.starts_with("## "))
        .map_or(lines.len(), |i| start + 1 + i);
    let mut out: String = lines[..start].concat();
    out.push_str(&section);
    if end < lines.len() {
        out.push('\n');
        out.push_str(&lines[end..].concat());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::replace_section;

    #[test]
    fn a_section_is_replaced_in_place() {
        let doc =
            "# Benchmarks\n\n## Store\nold store\n\n## Ingress\nold\nlines\n\n## Agent\nagent\n";
        let out = replace_section(doc, "## Ingress\nnew\n");
        assert_eq!(
            out,
            "# Benchmarks\n\n## Store\nold store\n\n## Ingress\nnew\n\n## Agent\nagent\n"
        );
    }

    #[test]
    fn a_missing_section_is_appended() {
        assert_eq!(
            replace_section("# Benchmarks\n", "## Ingress\nnew"),
            "# Benchmarks\n\n## Ingress\nnew\n"
        );
        assert_eq!(replace_section("", "## Ingress\nnew"), "## Ingress\nnew\n");
    }

    #[test]
    fn the_last_section_is_replaced_to_the_end() {
        let doc = "# B\n\n## Ingress\nold\n";
        assert_eq!(
            replace_section(doc, "## Ingress\nnew\n"),
            "# B\n\n## Ingress\nnew\n"
        );
    }
}

//! The ingress's Prometheus metrics, and the closed list of reasons a connection is refused.

use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry};

/// Why a connection was refused. Each refused connection is counted under exactly one reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FailureReason {
    /// The ClientHello named no host.
    NoSni,
    /// No route for the host.
    UnknownSni,
    /// The client sent no certificate.
    NoClientCert,
    /// The client certificate chains to no CA this ingress knows.
    UnknownCa,
    /// The client certificate chains to another namespace's CA on this ingress.
    CrossTenant,
    /// The client certificate has expired.
    Expired,
    /// The client certificate is not X.509 v3.
    NotV3,
    /// The client certificate is unusable for another reason (usage, encoding, signature).
    BadCertificate,
    /// The route stayed on hold longer than its `max_wait`.
    HoldTimeout,
    /// The upstream refused or did not answer.
    UpstreamUnavailable,
    /// Anything else in TLS: garbage instead of a ClientHello, a client that gave up, a timeout.
    TlsError,
}

impl FailureReason {
    pub const ALL: [FailureReason; 11] = [
        Self::NoSni,
        Self::UnknownSni,
        Self::NoClientCert,
        Self::UnknownCa,
        Self::CrossTenant,
        Self::Expired,
        Self::NotV3,
        Self::BadCertificate,
        Self::HoldTimeout,
        Self::UpstreamUnavailable,
        Self::TlsError,
    ];

    /// The `reason` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoSni => "no_sni",
            Self::UnknownSni => "unknown_sni",
            Self::NoClientCert => "no_client_cert",
            Self::UnknownCa => "unknown_ca",
            Self::CrossTenant => "cross_tenant",
            Self::Expired => "expired",
            Self::NotV3 => "not_v3",
            Self::BadCertificate => "bad_certificate",
            Self::HoldTimeout => "hold_timeout",
            Self::UpstreamUnavailable => "upstream_unavailable",
            Self::TlsError => "tls_error",
        }
    }
}

impl std::fmt::Display for FailureReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The ingress's metrics, registered once in the agent's registry and shared by clones.
#[derive(Clone, Debug)]
pub struct IngressMetrics {
    connections: IntCounterVec,
    active: IntGauge,
    failures: IntCounterVec,
    held: IntGauge,
    route_updates: IntCounter,
    /// Pre-resolved `tessera_ingress_bytes_total` children: the relay adds to them per read.
    pub(crate) client_to_upstream: IntCounter,
    pub(crate) upstream_to_client: IntCounter,
}

impl IngressMetrics {
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let connections = IntCounterVec::new(
            Opts::new(
                "tessera_ingress_connections_total",
                "Connections handed to an upstream, by kind of target.",
            ),
            &["target"],
        )?;
        let active = IntGauge::new(
            "tessera_ingress_active_connections",
            "TCP connections open on the ingress, from accept to close.",
        )?;
        let bytes = IntCounterVec::new(
            Opts::new(
                "tessera_ingress_bytes_total",
                "Payload bytes relayed, by direction.",
            ),
            &["direction"],
        )?;
        let failures = IntCounterVec::new(
            Opts::new(
                "tessera_ingress_handshake_failures_total",
                "Connections refused, by reason.",
            ),
            &["reason"],
        )?;
        let held = IntGauge::new(
            "tessera_ingress_held_connections",
            "Connections waiting for a route on hold.",
        )?;
        let route_updates = IntCounter::new(
            "tessera_ingress_route_updates_total",
            "Route tables accepted.",
        )?;
        registry.register(Box::new(connections.clone()))?;
        registry.register(Box::new(active.clone()))?;
        registry.register(Box::new(bytes.clone()))?;
        registry.register(Box::new(failures.clone()))?;
        registry.register(Box::new(held.clone()))?;
        registry.register(Box::new(route_updates.clone()))?;
        // Every series exists from the start, so dashboards and rate() see zeros, not gaps.
        for target in ["local", "forward", "external"] {
            connections.with_label_values(&[target]);
        }
        for reason in FailureReason::ALL {
            failures.with_label_values(&[reason.as_str()]);
        }
        Ok(Self {
            client_to_upstream: bytes.with_label_values(&["client_to_upstream"]),
            upstream_to_client: bytes.with_label_values(&["upstream_to_client"]),
            connections,
            active,
            failures,
            held,
            route_updates,
        })
    }

    /// Connections routed to targets of this kind: "local", "forward" or "external".
    pub fn connections(&self, target: &str) -> u64 {
        self.connections.with_label_values(&[target]).get()
    }

    /// Connections refused for this reason.
    pub fn failures(&self, reason: FailureReason) -> u64 {
        self.failures.with_label_values(&[reason.as_str()]).get()
    }

    /// Connections refused, all reasons together.
    pub fn total_failures(&self) -> u64 {
        FailureReason::ALL.iter().map(|r| self.failures(*r)).sum()
    }

    /// Open connections on every ingress sharing these metrics.
    pub fn active(&self) -> i64 {
        self.active.get()
    }

    /// Connections waiting on a held route.
    pub fn held(&self) -> i64 {
        self.held.get()
    }

    /// Bytes relayed from clients to upstreams.
    pub fn bytes_client_to_upstream(&self) -> u64 {
        self.client_to_upstream.get()
    }

    /// Bytes relayed from upstreams to clients.
    pub fn bytes_upstream_to_client(&self) -> u64 {
        self.upstream_to_client.get()
    }

    /// Route tables accepted by `Ingress::update`.
    pub fn route_updates(&self) -> u64 {
        self.route_updates.get()
    }

    pub(crate) fn refused(&self, reason: FailureReason) {
        self.failures.with_label_values(&[reason.as_str()]).inc();
    }

    pub(crate) fn routed(&self, target: &str) {
        self.connections.with_label_values(&[target]).inc();
    }

    pub(crate) fn route_updated(&self) {
        self.route_updates.inc();
    }

    /// Counts one open connection until the guard drops.
    pub(crate) fn active_guard(&self) -> GaugeGuard {
        GaugeGuard::new(self.active.clone())
    }

    /// Counts one held connection until the guard drops.
    pub(crate) fn held_guard(&self) -> GaugeGuard {
        GaugeGuard::new(self.held.clone())
    }
}

/// Increments a gauge now and decrements it on drop, whichever way the task ends.
pub(crate) struct GaugeGuard(IntGauge);

impl GaugeGuard {
    fn new(gauge: IntGauge) -> Self {
        gauge.inc();
        Self(gauge)
    }
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

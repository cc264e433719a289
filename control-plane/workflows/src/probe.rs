//! End-to-end checks of a namespace: a real Temporal call over mTLS through the cell ingress,
//! with the SNI host, server root and a client certificate exactly as a tenant's SDK uses them.

use std::str::FromStr;
use std::time::Duration;

use temporalio_client::{
    Client, ClientOptions, ClientTlsOptions, ConnectionOptions, TlsOptions, Url, tonic,
};
use temporalio_common::protos::temporal::api::namespace::v1::NamespaceConfig;
use temporalio_common::protos::temporal::api::workflowservice::v1::{
    DescribeNamespaceRequest, UpdateNamespaceRequest,
};
use tessera_pki::IssuedCert;

/// Where and as whom to call.
#[derive(Debug, Clone)]
pub struct ProbeTarget<'a> {
    /// `host:port` of the ingress.
    pub address: &'a str,
    /// SNI host.
    pub host: &'a str,
    pub server_root_pem: &'a str,
    pub temporal_namespace: &'a str,
}

fn days(d: &prost_wkt_types::Duration) -> u32 {
    (d.seconds / 86_400) as u32
}

/// A Temporal client through the ingress, exactly as a tenant's SDK connects: SNI host, the
/// endpoint's server root, a client certificate.
pub async fn connect(
    target: &ProbeTarget<'_>,
    cert: &IssuedCert,
    identity: &str,
) -> Result<Client, String> {
    let tls = TlsOptions::builder()
        .server_root_ca_cert(target.server_root_pem.as_bytes().to_vec())
        .domain(target.host.to_string())
        .client_tls_options(
            ClientTlsOptions::builder()
                .client_cert(cert.chain_pem.as_bytes().to_vec())
                .client_private_key(cert.key_pem.as_bytes().to_vec())
                .build(),
        )
        .build();
    let url = Url::from_str(&format!("https://{}", target.address)).map_err(|e| e.to_string())?;
    let conn = ConnectionOptions::new(url)
        .identity(identity.to_string())
        .tls_options(tls)
        .connect_timeout(Duration::from_secs(5))
        .build();
    Client::connect(conn, ClientOptions::new(target.temporal_namespace).build())
        .await
        .map_err(|e| format!("connecting through the ingress: {e}"))
}

/// Describes the namespace through the ingress (the cheapest real call a worker makes).
pub async fn describe(
    target: &ProbeTarget<'_>,
    cert: &IssuedCert,
    identity: &str,
) -> Result<(), String> {
    let client = connect(target, cert, identity).await?;
    retention(&client, target.temporal_namespace)
        .await
        .map(|_| ())
}

/// `DescribeNamespace`: the namespace's retention in days, as the runtime reports it.
async fn retention(client: &Client, namespace: &str) -> Result<Option<u32>, String> {
    let mut svc = client.connection().workflow_service();
    Ok(svc
        .describe_namespace(tonic::Request::new(DescribeNamespaceRequest {
            namespace: namespace.into(),
            ..Default::default()
        }))
        .await
        .map_err(|e| format!("DescribeNamespace: {}", e.message()))?
        .into_inner()
        .config
        .and_then(|c| c.workflow_execution_retention_ttl)
        .map(|d| days(&d)))
}

/// Connects through the ingress and describes the namespace; when `retention_days` differs
/// from the namespace's, updates it first. Returns the retention the runtime reports.
pub async fn verify(
    target: &ProbeTarget<'_>,
    cert: &IssuedCert,
    retention_days: u32,
) -> Result<u32, String> {
    let client = connect(target, cert, "tessera-control-plane-probe").await?;
    if retention(&client, target.temporal_namespace).await? == Some(retention_days) {
        return Ok(retention_days);
    }
    let mut svc = client.connection().workflow_service();
    svc.update_namespace(tonic::Request::new(UpdateNamespaceRequest {
        namespace: target.temporal_namespace.into(),
        config: Some(NamespaceConfig {
            workflow_execution_retention_ttl: Some(prost_wkt_types::Duration {
                seconds: i64::from(retention_days) * 86_400,
                nanos: 0,
            }),
            ..Default::default()
        }),
        ..Default::default()
    }))
    .await
    .map_err(|e| format!("UpdateNamespace: {}", e.message()))?;
    let after = retention(&client, target.temporal_namespace)
        .await?
        .unwrap_or(0);
    if after != retention_days {
        return Err(format!(
            "the runtime reports a retention of {after} days after it was set to {retention_days}"
        ));
    }
    Ok(after)
}

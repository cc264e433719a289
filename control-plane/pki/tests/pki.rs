use chrono::{Duration, Utc};
use tessera_pki::{
    CaBundleError, CertificateAuthority, MasterKey, Usage, cell_id_of, certs_from_pem,
    generate_csr, inspect_pem, parse_ca_bundle, renewal_due, testing,
};

#[test]
fn root_intermediate_and_leaves_chain_up() {
    let root = CertificateAuthority::generate_root("Tessera root", Duration::days(3650)).unwrap();
    assert!(root.is_root());
    let cell = root
        .issue_intermediate("cell local-east-1", Duration::days(365))
        .unwrap();
    assert!(!cell.is_root());
    let info = inspect_pem(&cell.cert_pem).unwrap();
    assert_eq!(info.version, 3);
    assert!(info.is_ca);

    let server = cell
        .issue(
            "ingress",
            &["orders.acme.tessera.localhost".into(), "127.0.0.1".into()],
            Usage::Server,
            Duration::days(30),
        )
        .unwrap();
    // The chain a server presents: leaf, then the cell intermediate; the root is left to peers.
    let chain = certs_from_pem(&server.chain_pem).unwrap();
    assert_eq!(chain.len(), 2);
    assert_eq!(
        inspect_pem(&server.chain_pem).unwrap().issuer,
        inspect_pem(&cell.cert_pem).unwrap().subject
    );

    // A CA rebuilt from storage issues the same way.
    let again = CertificateAuthority::from_pem(&cell.chain_pem, &cell.key_pem).unwrap();
    let c = again
        .issue("x", &["x.test".into()], Usage::Client, Duration::days(1))
        .unwrap();
    assert_eq!(certs_from_pem(&c.chain_pem).unwrap().len(), 2);
}

#[test]
fn agent_csr_is_signed_with_our_name_not_theirs() {
    let root = CertificateAuthority::generate_root("root", Duration::days(10)).unwrap();
    let cell = root.issue_intermediate("cell", Duration::days(5)).unwrap();
    let (csr, key) = generate_csr("i would like to be a CA").unwrap();
    assert!(key.contains("PRIVATE KEY"));
    let issued = cell
        .sign_agent_csr(&csr, "local-east-1", Duration::days(1))
        .unwrap();
    let der = &certs_from_pem(&issued.cert_pem).unwrap()[0];
    assert_eq!(cell_id_of(der).as_deref(), Some("local-east-1"));
    let info = inspect_pem(&issued.cert_pem).unwrap();
    assert!(!info.is_ca);
    assert!(info.subject.contains("cell-agent local-east-1"));
    assert!(generate_csr("x").is_ok());
    assert!(
        cell.sign_agent_csr("not a csr", "c", Duration::days(1))
            .is_err()
    );
}

#[test]
fn ca_bundles_are_checked() {
    let now = Utc::now();
    let a = CertificateAuthority::generate_root("tenant A", Duration::days(100)).unwrap();
    let b = CertificateAuthority::generate_root("tenant B", Duration::days(100)).unwrap();
    let both = format!("{}{}", a.cert_pem, b.cert_pem);
    let infos = parse_ca_bundle(&both, now).unwrap();
    assert_eq!(infos.len(), 2);
    assert_eq!(infos[0].fingerprint_sha256.len(), 64);
    assert!(infos[1].subject.contains("tenant B"));
    // Each entry's own PEM rebuilds the bundle without the others (how a CA is removed).
    let only_b = parse_ca_bundle(&infos[1].pem, now).unwrap();
    assert_eq!(only_b.len(), 1);
    assert_eq!(only_b[0].fingerprint_sha256, infos[1].fingerprint_sha256);
    assert_eq!(infos[0].pem.trim(), a.cert_pem.trim());

    let leaf = a
        .issue("worker", &[], Usage::Client, Duration::days(1))
        .unwrap();
    assert!(matches!(
        parse_ca_bundle(&leaf.cert_pem, now),
        Err(CaBundleError::NotCa { .. })
    ));
    assert_eq!(parse_ca_bundle("hello", now), Err(CaBundleError::Empty));
    let seventeen = a.cert_pem.repeat(17);
    assert!(matches!(
        parse_ca_bundle(&seventeen, now),
        Err(CaBundleError::TooMany(17))
    ));
    let huge = format!("{}{}", a.cert_pem, " ".repeat(33 * 1024));
    assert!(matches!(
        parse_ca_bundle(&huge, now),
        Err(CaBundleError::TooLarge(_))
    ));
    let v1 = testing::v1_certificate(&a, "old", now - Duration::days(1), now + Duration::days(1))
        .unwrap();
    assert_eq!(inspect_pem(&v1.cert_pem).unwrap().version, 1);
    assert!(matches!(
        parse_ca_bundle(&v1.cert_pem, now),
        Err(CaBundleError::NotV3 { version: 1, .. })
    ));
    assert!(matches!(
        parse_ca_bundle(&a.cert_pem, now + Duration::days(200)),
        Err(CaBundleError::Expired { .. })
    ));
}

#[test]
fn renewal_is_due_after_two_thirds_of_the_lifetime() {
    let start = Utc::now();
    let end = start + Duration::days(30);
    assert!(!renewal_due(start, end, start + Duration::days(19)));
    assert!(renewal_due(start, end, start + Duration::days(20)));
    assert!(renewal_due(start, end, end + Duration::days(1)));
}

#[test]
fn master_key_seals_and_refuses_other_keys() {
    let k = MasterKey::from_base64(&MasterKey::generate_base64()).unwrap();
    let sealed = k.seal("ns/1/ca", b"-----BEGIN PRIVATE KEY-----");
    assert_eq!(
        k.open_str("ns/1/ca", &sealed).unwrap(),
        "-----BEGIN PRIVATE KEY-----"
    );
    // Bound to its record: moved to another row, it does not open.
    assert!(k.open("ns/2/ca", &sealed).is_none());
    let other = MasterKey::from_base64(&MasterKey::generate_base64()).unwrap();
    assert!(other.open("ns/1/ca", &sealed).is_none());
    assert!(MasterKey::from_base64("c2hvcnQ=").is_err());
}

use std::sync::Arc;

use rustls::client::danger::ServerCertVerifier;
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{ServerName, UnixTime};
use rustls::RootCertStore;

use super::*;

fn verifier(ca: &LocalCa) -> Arc<WebPkiServerVerifier> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca.cert_pem().as_bytes()).expect("CA PEM"))
        .expect("CA as a root");
    WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::new(rustls::crypto::ring::default_provider()),
    )
    .build()
    .expect("verifier")
}

fn verifies(ca: &LocalCa, leaf: &Leaf, name: &str) -> bool {
    verifier(ca)
        .verify_server_cert(
            &leaf.chain[0],
            &[],
            &ServerName::try_from(name.to_string()).expect("name"),
            &[],
            UnixTime::now(),
        )
        .inspect_err(|error| eprintln!("{name}: {error}"))
        .is_ok()
}

#[test]
fn a_new_ca_is_written_with_a_private_key() {
    let home = tempfile::tempdir().expect("temp dir");
    let folder = home.path().join("data/ca");
    let (ca, created) = LocalCa::load_or_create(&folder).expect("CA");
    assert!(created);
    assert!(ca.cert_pem().starts_with("-----BEGIN CERTIFICATE-----"));
    let key = std::fs::read_to_string(folder.join(KEY_FILE)).expect("key");
    assert!(key.contains("PRIVATE KEY"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&folder.join(KEY_FILE)), 0o600);
        assert_eq!(mode(&folder), 0o700);
    }
    let leftovers: Vec<_> = std::fs::read_dir(home.path().join("data"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(leftovers, vec![std::ffi::OsString::from("ca")]);
}

#[test]
fn a_second_run_reuses_the_ca() {
    let home = tempfile::tempdir().expect("temp dir");
    let folder = home.path().join("ca");
    let (first, _) = LocalCa::load_or_create(&folder).expect("CA");
    let (second, created) = LocalCa::load_or_create(&folder).expect("CA again");
    assert!(!created);
    assert_eq!(first.info(true).sha256, second.info(false).sha256);
    // A leaf issued by the reloaded CA verifies against the first one's certificate.
    let leaf = second.issue_localhost().expect("leaf");
    assert!(verifies(&first, &leaf, "localhost"));
}

#[test]
fn concurrent_first_runs_make_one_ca() {
    let home = tempfile::tempdir().expect("temp dir");
    let folder = home.path().join("ca");
    let fingerprints: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                scope.spawn(|| {
                    let (ca, _) = LocalCa::load_or_create(&folder).expect("CA");
                    ca.info(false).sha256
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(fingerprints.iter().all(|f| *f == fingerprints[0]));
    let on_disk = LocalCa::load(&folder).expect("CA").info(false).sha256;
    assert_eq!(on_disk, fingerprints[0]);
    assert_eq!(std::fs::read_dir(home.path()).unwrap().count(), 1);
}

#[cfg(unix)]
#[test]
fn a_key_readable_by_others_is_refused_with_the_fix() {
    use std::os::unix::fs::PermissionsExt;
    let home = tempfile::tempdir().expect("temp dir");
    let folder = home.path().join("ca");
    LocalCa::load_or_create(&folder).expect("CA");
    let key = folder.join(KEY_FILE);
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let error = LocalCa::load(&folder).err().expect("refused");
    let text = error.to_string();
    assert!(text.contains("mode 644"), "{text}");
    assert!(
        text.contains(&format!("chmod 600 {}", key.display())),
        "{text}"
    );
}

#[test]
fn a_damaged_certificate_names_the_folder_to_remove() {
    let home = tempfile::tempdir().expect("temp dir");
    let folder = home.path().join("ca");
    LocalCa::load_or_create(&folder).expect("CA");
    std::fs::write(folder.join(CERT_FILE), "not a certificate").unwrap();
    let text = LocalCa::load(&folder).err().expect("refused").to_string();
    assert!(text.contains("is not a usable CA certificate"), "{text}");
    assert!(
        text.contains(&format!("remove the folder `{}`", folder.display())),
        "{text}"
    );
}

#[test]
fn the_leaf_covers_the_local_names_only() {
    let home = tempfile::tempdir().expect("temp dir");
    let (ca, _) = LocalCa::load_or_create(&home.path().join("ca")).expect("CA");
    let leaf = ca.issue_localhost().expect("leaf");
    let (_, parsed) = x509_parser::parse_x509_certificate(&leaf.chain[0]).expect("leaf DER");
    let names: Vec<String> = parsed
        .subject_alternative_name()
        .expect("SAN extension")
        .expect("SANs")
        .value
        .general_names
        .iter()
        .map(|name| match name {
            x509_parser::extensions::GeneralName::DNSName(name) => name.to_string(),
            x509_parser::extensions::GeneralName::IPAddress(bytes) => match bytes.len() {
                4 => std::net::IpAddr::from(<[u8; 4]>::try_from(*bytes).unwrap()).to_string(),
                _ => std::net::IpAddr::from(<[u8; 16]>::try_from(*bytes).unwrap()).to_string(),
            },
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(names, LOCAL_NAMES);
    for name in ["localhost", "127.0.0.1", "::1"] {
        assert!(verifies(&ca, &leaf, name), "{name}");
    }
    for name in ["example.com", "api.localhost", "10.0.0.1"] {
        assert!(!verifies(&ca, &leaf, name), "{name}");
    }
    let validity = parsed.validity();
    let lifetime = validity.not_after.to_datetime() - validity.not_before.to_datetime();
    assert!(lifetime <= LEAF_VALIDITY + CLOCK_SKEW, "{lifetime}");
}

#[test]
fn a_name_under_localhost_gets_its_own_certificate() {
    let home = tempfile::tempdir().expect("temp dir");
    let (ca, _) = LocalCa::load_or_create(&home.path().join("ca")).expect("CA");
    let leaf = ca.issue(&["api.localhost"]).expect("leaf");
    assert!(verifies(&ca, &leaf, "api.localhost"));
    assert!(!verifies(&ca, &leaf, "web.localhost"));
}

#[test]
fn the_ca_can_vouch_for_local_names_only() {
    let home = tempfile::tempdir().expect("temp dir");
    let (ca, _) = LocalCa::load_or_create(&home.path().join("ca")).expect("CA");
    // A certificate for another site, signed with the CA's key, fails its name constraints.
    let mut params = CertificateParams::new(vec!["example.com".to_string()]).unwrap();
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate().unwrap();
    let foreign = params.signed_by(&key, &ca.issuer).unwrap();
    let leaf = Leaf {
        chain: vec![foreign.der().clone()],
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        cert_pem: foreign.pem(),
    };
    assert!(!verifies(&ca, &leaf, "example.com"));
}

#[test]
fn info_shows_the_fingerprint_and_validity() {
    let home = tempfile::tempdir().expect("temp dir");
    let (ca, created) = LocalCa::load_or_create(&home.path().join("ca")).expect("CA");
    let info = ca.info(created);
    assert_eq!(info.sha256.len(), 32 * 3 - 1);
    assert!(info.name.starts_with("sandbox local CA"), "{}", info.name);
    assert!(info.not_before.ends_with(" UTC"));
    assert!(info.not_after > info.not_before);
    assert_eq!(info.certificate, home.path().join("ca").join(CERT_FILE));
}

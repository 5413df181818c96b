//! The local certificate authority: created once per user, kept in the user's data folder, and
//! used to issue the gateway's certificate for `localhost`, `*.localhost`, `127.0.0.1` and `::1`.
//!
//! Owns: the CA's files (`ca-cert.pem`, and `ca-key.pem` with mode 0600, in a 0700 folder; see
//! [`folder`]), their creation (atomic: concurrent first runs end with one CA), and issuing leaf
//! certificates. It must not print, nor know about the proxy: the control plane hands the proxy
//! what [`LocalCa::issue_localhost`] returns, and `sandbox ca` renders [`CaInfo`].
//!
//! The CA carries a name constraint (RFC 5280 §4.2.1.10): it can only vouch for `localhost` and
//! names under it, so trusting it does not let its key (should it leak) impersonate any other
//! site by name to clients that check constraints (OpenSSL, BoringSSL, NSS, rustls, Apple's and
//! Windows' verifiers). IP addresses are left unconstrained: BoringSSL (gRPC's C core, Android)
//! refuses every certificate under an IP address constraint ("unsupported name constraint type").

pub mod folder;

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose,
    GeneralSubtree, IsCa, Issuer, KeyPair, KeyUsagePurpose, NameConstraints, SanType,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

pub use folder::{ca_folder, data_dir, CERT_FILE, KEY_FILE};

/// How long the CA is valid from its creation.
const CA_VALIDITY: Duration = Duration::days(10 * 365);
/// How long a gateway certificate is valid; one is issued at every start.
const LEAF_VALIDITY: Duration = Duration::days(30);
/// Leaves are valid from a little before now, for clocks slightly behind.
const CLOCK_SKEW: Duration = Duration::hours(1);
/// The names the gateway's default certificate covers. Names under `localhost` (`api.localhost`)
/// get a certificate of their own when a client first asks for one by SNI: a wildcard directly
/// under a single label (`*.localhost`) is refused by OpenSSL, rustls and browsers alike.
pub const LOCAL_NAMES: &[&str] = &["localhost", "127.0.0.1", "::1"];

/// Why the CA could not be created, read or used. Each names the path and what to do.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("cannot find a folder for sandbox's data: none of `SANDBOX_DATA_DIR`, `XDG_DATA_HOME`, `HOME` (or `LOCALAPPDATA` on Windows) is set\n  hint: set `SANDBOX_DATA_DIR` to a folder sandbox may write")]
    NoDataDir,
    #[error("cannot create the folder `{path}`: {source}\n  hint: check that you may write there (`ls -ld` its parent), or set `SANDBOX_DATA_DIR` to another folder")]
    CreateFolder {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write `{path}`: {source}\n  hint: check that you may write in its folder, or set `SANDBOX_DATA_DIR` to another folder")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read `{path}`: {source}\n  hint: it must belong to you (`chmod 600 {path}` for the key); or remove the folder `{folder}` to make a new CA, then trust it again (`sandbox ca`)", path = path.display(), folder = folder.display())]
    Read {
        path: PathBuf,
        folder: PathBuf,
        source: std::io::Error,
    },
    #[error("`{path}` is not a usable CA {what}: {detail}\n  hint: remove the folder `{folder}` to make a new CA, then trust it again (`sandbox ca`)", path = path.display(), folder = folder.display())]
    Invalid {
        path: PathBuf,
        folder: PathBuf,
        what: &'static str,
        detail: String,
    },
    #[error("the CA key `{path}` may be read by other users (mode {mode:03o})\n  hint: run `chmod 600 {path}`", path = path.display())]
    KeyReadableByOthers { path: PathBuf, mode: u32 },
    #[error("cannot make a certificate: {0}")]
    Generate(#[from] rcgen::Error),
}

/// The local CA, loaded: its certificate and the key that signs leaves.
pub struct LocalCa {
    folder: PathBuf,
    cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
    /// The certificate's subject common name and validity, read once.
    name: String,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    der: Vec<u8>,
}

/// A certificate issued by the CA, with its key (kept in memory only).
pub struct Leaf {
    /// The certificate (the CA is not included: clients trust it on their own).
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    /// The certificate in PEM, for tests and tools that want a file.
    pub cert_pem: String,
}

/// What `sandbox ca` shows about the CA. Never the key.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CaInfo {
    /// The CA certificate (PEM) to trust.
    pub certificate: PathBuf,
    /// The CA key (PEM, mode 0600).
    pub key: PathBuf,
    /// The certificate's SHA-256 fingerprint, upper-case hex pairs joined with `:`.
    pub sha256: String,
    /// The subject's common name.
    pub name: String,
    pub not_before: String,
    pub not_after: String,
    /// Whether this call created it.
    pub created: bool,
}

impl LocalCa {
    /// The user's CA ([`ca_folder`]), created on first use.
    pub fn open() -> Result<(LocalCa, bool), CaError> {
        LocalCa::load_or_create(&ca_folder()?)
    }

    /// The CA in `folder`, created there when absent; `true` when this call created it. Two
    /// processes creating it at once end with the same CA (the folder is put in place whole, by
    /// one rename; the loser reads the winner's).
    pub fn load_or_create(folder: &Path) -> Result<(LocalCa, bool), CaError> {
        if !folder.join(CERT_FILE).exists() || !folder.join(KEY_FILE).exists() {
            let (cert_pem, key_pem) = generate_ca()?;
            if folder::install(folder, &cert_pem, &key_pem)? {
                return Ok((LocalCa::load(folder)?, true));
            }
        }
        Ok((LocalCa::load(folder)?, false))
    }

    /// The CA already in `folder`.
    pub fn load(folder: &Path) -> Result<LocalCa, CaError> {
        let cert_path = folder.join(CERT_FILE);
        let key_path = folder.join(KEY_FILE);
        folder::check_key_mode(&key_path)?;
        let read = |path: &Path| {
            std::fs::read_to_string(path).map_err(|source| CaError::Read {
                path: path.to_path_buf(),
                folder: folder.to_path_buf(),
                source,
            })
        };
        let invalid = |path: &Path, what, detail: String| CaError::Invalid {
            path: path.to_path_buf(),
            folder: folder.to_path_buf(),
            what,
            detail,
        };
        let cert_pem = read(&cert_path)?;
        let key_pem = read(&key_path)?;
        let key = KeyPair::from_pem(&key_pem)
            .map_err(|error| invalid(&key_path, "key", error.to_string()))?;
        let der = pem_to_der(&cert_pem)
            .ok_or_else(|| invalid(&cert_path, "certificate", "no PEM certificate in it".into()))?;
        let (_, parsed) = x509_parser::parse_x509_certificate(&der)
            .map_err(|error| invalid(&cert_path, "certificate", error.to_string()))?;
        let name = parsed
            .subject()
            .iter_common_name()
            .next()
            .and_then(|name| name.as_str().ok())
            .unwrap_or_default()
            .to_string();
        let not_before = parsed.validity().not_before.to_datetime();
        let not_after = parsed.validity().not_after.to_datetime();
        drop(parsed);
        let issuer = Issuer::from_ca_cert_pem(&cert_pem, key)
            .map_err(|error| invalid(&cert_path, "certificate", error.to_string()))?;
        if !issuer.key_usages().is_empty()
            && !issuer.key_usages().contains(&KeyUsagePurpose::KeyCertSign)
        {
            return Err(invalid(
                &cert_path,
                "certificate",
                "it may not sign certificates".into(),
            ));
        }
        Ok(LocalCa {
            folder: folder.to_path_buf(),
            cert_pem,
            issuer,
            name,
            not_before,
            not_after,
            der,
        })
    }

    /// The CA certificate in PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Where the CA certificate is.
    pub fn cert_path(&self) -> PathBuf {
        self.folder.join(CERT_FILE)
    }

    /// What `sandbox ca` shows.
    pub fn info(&self, created: bool) -> CaInfo {
        let sha256 = Sha256::digest(&self.der)
            .iter()
            .map(|byte| format!("{byte:02X}"))
            .collect::<Vec<_>>()
            .join(":");
        CaInfo {
            certificate: self.cert_path(),
            key: self.folder.join(KEY_FILE),
            sha256,
            name: self.name.clone(),
            not_before: date(self.not_before),
            not_after: date(self.not_after),
            created,
        }
    }

    /// A certificate for [`LOCAL_NAMES`], valid 30 days from now, with a new key.
    pub fn issue_localhost(&self) -> Result<Leaf, CaError> {
        self.issue(LOCAL_NAMES)
    }

    /// A certificate for `names` (DNS names or IP addresses), valid 30 days from now, with a new
    /// key. DNS names outside `localhost` are issued but clients refuse them (the CA's name
    /// constraint).
    pub fn issue(&self, names: &[&str]) -> Result<Leaf, CaError> {
        let mut params = CertificateParams::default();
        params.subject_alt_names = names
            .iter()
            .map(|name| match name.parse::<std::net::IpAddr>() {
                Ok(ip) => Ok(SanType::IpAddress(ip)),
                Err(_) => Ok(SanType::DnsName((*name).try_into()?)),
            })
            .collect::<Result<_, rcgen::Error>>()?;
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(
            DnType::CommonName,
            names.first().copied().unwrap_or("localhost"),
        );
        params
            .distinguished_name
            .push(DnType::OrganizationName, "sandbox");
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - CLOCK_SKEW;
        params.not_after = now + LEAF_VALIDITY;
        let key = KeyPair::generate()?;
        let certificate = params.signed_by(&key, &self.issuer)?;
        Ok(Leaf {
            chain: vec![certificate.der().clone()],
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            cert_pem: certificate.pem(),
        })
    }
}

/// A new CA: its certificate and key, in PEM.
fn generate_ca() -> Result<(String, String), CaError> {
    let mut params = CertificateParams::default();
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_default();
    let name = if user.is_empty() {
        "sandbox local CA".to_string()
    } else {
        format!("sandbox local CA ({user})")
    };
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, name);
    params
        .distinguished_name
        .push(DnType::OrganizationName, "sandbox local development CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.name_constraints = Some(NameConstraints {
        // DNS only: see the module doc for why not `127.0.0.0/8` and `::1`.
        permitted_subtrees: vec![GeneralSubtree::DnsName("localhost".into())],
        excluded_subtrees: Vec::new(),
    });
    let now = OffsetDateTime::now_utc();
    params.not_before = now - CLOCK_SKEW;
    params.not_after = now + CA_VALIDITY;
    let key = KeyPair::generate()?;
    let certificate = params.self_signed(&key)?;
    Ok((certificate.pem(), key.serialize_pem()))
}

/// The DER bytes of the first certificate in `pem`.
fn pem_to_der(pem: &str) -> Option<Vec<u8>> {
    use rustls_pki_types::pem::PemObject;
    CertificateDer::from_pem_slice(pem.as_bytes())
        .ok()
        .map(|der| der.to_vec())
}

/// `2026-12-01 16:20 UTC`.
fn date(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{}-{:02}-{:02} {:02}:{:02} UTC",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute()
    )
}

#[cfg(test)]
mod tests;

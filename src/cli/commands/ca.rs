//! `sandbox ca`: where the local CA is (created if needed), what it is, and how to trust it. The
//! gateway's HTTPS certificates (`gateway: {tls: true}`) are issued by it. Never prints the key.

use crate::ca::{CaInfo, LocalCa};
use crate::output::Printer;

#[derive(Debug, clap::Args)]
pub struct CaArgs {
    /// Print only the CA certificate's path, for scripts (`curl --cacert "$(sandbox ca --path)"`).
    #[arg(long)]
    pub path: bool,
}

pub fn run(args: CaArgs, json: bool, printer: &Printer) -> anyhow::Result<u8> {
    let (ca, created) = LocalCa::open()?;
    let info = ca.info(created);
    if args.path {
        printer.stdout_line(&info.certificate.display().to_string());
    } else if json {
        printer.stdout_line(&serde_json::to_string_pretty(&info)?);
    } else {
        printer.stdout_text(&describe(&info));
    }
    Ok(0)
}

/// The text `sandbox ca` prints: the CA, then how to trust it per system and per tool.
fn describe(info: &CaInfo) -> String {
    let certificate = format!("\"{}\"", info.certificate.display());
    let created = if info.created { " (created now)" } else { "" };
    format!(
        "sandbox's local CA{created}
  certificate  {}
  key          {} (mode 0600; never share it)
  name         {}
  sha-256      {}
  valid        {} to {}
  vouches for  localhost and names under it (a name constraint: no other domain), and IP addresses

Trust it once per machine, then `gateway: {{tls: true}}` URLs open without warnings:
  Debian, Ubuntu  sudo cp {certificate} /usr/local/share/ca-certificates/sandbox-local-ca.crt && sudo update-ca-certificates
  Fedora, Arch    sudo trust anchor --store {certificate}
  Firefox, Chrome on Linux keep their own store (NSS): certutil -d sql:$HOME/.pki/nssdb -A -t C,, -n sandbox-local-ca -i {certificate}
                  (certutil is in libnss3-tools / nss-tools; Firefox: Settings, Certificates, Import)
  macOS           sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain {certificate}
  Windows         certutil -addstore -user Root {certificate}

Or per tool, without trusting it system-wide:
  curl            curl --cacert {certificate} https://localhost:8080/
  OpenSSL, Python SSL_CERT_FILE={certificate} (replaces the default bundle)
  Node.js         NODE_EXTRA_CA_CERTS={certificate}
  Python requests REQUESTS_CA_BUNDLE={certificate}
  gRPC (C core)   GRPC_DEFAULT_SSL_ROOTS_FILE_PATH={certificate}
  scripts         sandbox ca --path
",
        info.certificate.display(),
        info.key.display(),
        info.name,
        info.sha256,
        info.not_before,
        info.not_after,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_description_names_the_files_and_never_the_key_material() {
        let info = CaInfo {
            certificate: "/data/sandbox/ca/ca-cert.pem".into(),
            key: "/data/sandbox/ca/ca-key.pem".into(),
            sha256: "AB:CD".into(),
            name: "sandbox local CA (dev)".into(),
            not_before: "2026-12-01 16:00 UTC".into(),
            not_after: "2036-11-29 16:00 UTC".into(),
            created: true,
        };
        let text = describe(&info);
        assert!(text.starts_with("sandbox's local CA (created now)\n"));
        assert!(text.contains("certificate  /data/sandbox/ca/ca-cert.pem\n"));
        assert!(text.contains("update-ca-certificates"));
        assert!(text.contains("trust anchor --store \"/data/sandbox/ca/ca-cert.pem\""));
        assert!(text.contains("security add-trusted-cert"));
        assert!(text.contains("certutil -addstore -user Root"));
        assert!(text.contains("NODE_EXTRA_CA_CERTS="));
        assert!(!text.contains("PRIVATE KEY"));
    }
}

//! HTTPS at a real gateway: `sandbox up` with `gateway: {tls: true}` creates the local CA in the
//! data folder (`SANDBOX_DATA_DIR`, a temp dir here), `ps --json` names the `https://` URL,
//! `sandbox ca --path` prints the certificate to trust, and curl verifies the gateway with it
//! (HTTP/2 by ALPN, `*.localhost` names by SNI) while plain HTTP stays served on the same port;
//! turning TLS off again is announced as `http://`.

use super::*;
use crate::util::httpd_service;

#[test]
fn a_tls_gateway_is_verified_by_curl_with_the_local_ca() {
    let project = Project::new("proxy-tls");
    let data = tempfile::tempdir().expect("temp dir");
    let data_dir = data.path().to_str().expect("path").to_string();
    let manifest = format!(
        "gateway:\n  port: 0\n  tls: true\n  routes:\n    - match: {{host: web.localhost}}\n      service: web\n      rewrite: /\n    - match: {{prefix: /web/}}\n      service: web\n      rewrite: /\nservices:\n{}",
        httpd_service(&project, "web", "")
    );
    let sandbox = Sandbox::up(project, &manifest, &[("SANDBOX_DATA_DIR", &data_dir)]);
    let url = sandbox.status["gateway"].as_str().expect("gateway URL");
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");

    let mut ca = sandbox.project.command(&["ca", "--path"]);
    ca.env("SANDBOX_DATA_DIR", &data_dir);
    let ca = sandbox.project.run_with(ca);
    ca.success();
    let ca_file = ca.stdout.trim().to_string();
    assert_eq!(
        std::path::Path::new(&ca_file),
        data.path().join("ca/ca-cert.pem")
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let key = data.path().join("ca/ca-key.pem");
        let mode = std::fs::metadata(&key).expect("key").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let port = sandbox.gateway;
    let curl = |args: &[&str]| -> String {
        let output = Command::new("curl")
            .args([
                "--silent",
                "--show-error",
                "--max-time",
                "10",
                "--cacert",
                &ca_file,
            ])
            .args(["-w", "\n%{http_version}"])
            .args(args)
            .output()
            .expect("curl must be installed for this test (`apt-get install curl`)");
        assert!(
            output.status.success(),
            "curl {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    assert_eq!(
        curl(&["--http2", &format!("https://localhost:{port}/web/health")]),
        "ok\n\n2"
    );
    assert_eq!(
        curl(&["--http1.1", &format!("{url}/web/health")]),
        "ok\n\n1.1"
    );
    let resolve = format!("web.localhost:{port}:127.0.0.1");
    assert_eq!(
        curl(&[
            "--resolve",
            &resolve,
            &format!("https://web.localhost:{port}/health")
        ]),
        "ok\n\n2"
    );
    // Plain HTTP on the same port.
    let plain = sandbox.get("/web/health");
    assert_eq!(
        (plain.status, plain.body.as_str()),
        (200, "ok\n"),
        "{plain:?}"
    );

    // Turning TLS off starts a control plane that announces `http://` again.
    sandbox
        .project
        .manifest(&manifest.replace("  tls: true\n", ""));
    let mut up = sandbox
        .project
        .command(&["up", "--wait", "--timeout", "30"]);
    up.env("SANDBOX_DATA_DIR", &data_dir);
    sandbox.project.run_with(up).success();
    let url = crate::util::ps_json(&sandbox.project)["gateway"]
        .as_str()
        .expect("gateway URL")
        .to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let port: u16 = url
        .rsplit(':')
        .next()
        .and_then(|port| port.parse().ok())
        .expect("port");
    let plain = send(port, "GET", "/web/health", &[]);
    assert_eq!(
        (plain.status, plain.body.as_str()),
        (200, "ok\n"),
        "{plain:?}"
    );
}

//! HTTPS at the gateway: a temp-dir local CA issues the certificates, real clients verify them
//! (curl with `--cacert`, Python's `ssl` with the CA file, grpcio's secure channel, a rustls
//! client), HTTP/2 is negotiated by ALPN, HTTP/1.1 too, cleartext HTTP and h2c stay served on the
//! same port, host routes work with `*.localhost` names (a certificate per name, by SNI), gRPC
//! trailers pass over TLS, and a failed handshake closes only its own connection. curl, python3
//! and the gRPC peers (`tests/peers/grpc/setup.sh`) must be installed.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Output;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use sandbox::ca::LocalCa;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::util::{get, manifest, start, Running, TestUpstream};

/// A gateway serving HTTPS with certificates from a CA in a temp dir.
struct Secure {
    running: Running,
    /// The CA certificate clients trust.
    ca_file: PathBuf,
    _home: tempfile::TempDir,
}

impl Secure {
    fn port(&self) -> u16 {
        self.running.gateway.port()
    }

    fn https(&self, host: &str, path: &str) -> String {
        format!("https://{host}:{}{path}", self.port())
    }
}

async fn start_secure(yaml: &str) -> Secure {
    let running = start(yaml).await;
    let home = tempfile::tempdir().expect("temp dir");
    let (ca, created) = LocalCa::load_or_create(&home.path().join("ca")).expect("local CA");
    assert!(created);
    let ca_file = ca.cert_path();
    let config = sandbox::control::plane::gateway_tls(ca).expect("TLS config");
    running.proxy.set_tls(Some(config));
    Secure {
        running,
        ca_file,
        _home: home,
    }
}

async fn two_upstreams() -> (TestUpstream, TestUpstream) {
    (
        TestUpstream::start("api").await,
        TestUpstream::start("web").await,
    )
}

fn host_routes(api: &TestUpstream, web: &TestUpstream) -> String {
    manifest(
        &[api, web],
        "gateway:\n  routes:\n    - match: {host: api.localhost}\n      service: api\n\
         \x20   - match: {prefix: /}\n      service: web\n",
    )
}

/// Runs curl with `args`; the test fails (naming the package) when curl is missing.
async fn curl(args: &[&str]) -> Output {
    tokio::process::Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "10"])
        .args(args)
        .output()
        .await
        .expect("curl must be installed for the TLS tests (`apt-get install curl`)")
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "curl failed ({:?}): {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `%{http_version} BODY` from a curl that trusts the CA.
async fn curl_trusting(secure: &Secure, extra: &[&str], url: &str) -> (String, serde_json::Value) {
    let ca = secure.ca_file.to_str().expect("path");
    let mut args = vec!["--cacert", ca, "-w", "\n%{http_version}"];
    args.extend_from_slice(extra);
    args.push(url);
    let text = stdout(&curl(&args).await);
    let (body, version) = text.rsplit_once('\n').expect("version line");
    let json = serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {body}"));
    (version.to_string(), json)
}

both_paths!(curl_verifies_the_gateway_and_negotiates_http2);
async fn curl_verifies_the_gateway_and_negotiates_http2() {
    let (api, web) = two_upstreams().await;
    let secure = start_secure(&host_routes(&api, &web)).await;
    // (The gateway listens on 127.0.0.1; the `::1` name is checked by the `ca` unit tests.)
    for host in ["localhost", "127.0.0.1"] {
        let url = secure.https(host, "/hello");
        let (version, json) = curl_trusting(&secure, &["--http2"], &url).await;
        assert_eq!(version, "2", "{url}");
        assert_eq!(json["upstream"], "web");
        assert_eq!(json["path"], "/hello");
    }
}

both_paths!(curl_over_tls_with_http1);
async fn curl_over_tls_with_http1() {
    let (api, web) = two_upstreams().await;
    let secure = start_secure(&host_routes(&api, &web)).await;
    let url = secure.https("localhost", "/one?x=1");
    let (version, json) = curl_trusting(&secure, &["--http1.1"], &url).await;
    assert_eq!(version, "1.1");
    assert_eq!(json["upstream"], "web");
    assert_eq!(json["query"], "x=1");
    assert_eq!(json["headers"]["x-forwarded-proto"], "https", "{json}");
    let (_, json) = curl_trusting(&secure, &["--http2"], &url).await;
    assert_eq!(json["headers"]["x-forwarded-proto"], "https", "{json}");
    let (_, json) = curl_trusting(&secure, &[], &secure.running.url("/plain")).await;
    assert_eq!(
        json["headers"]["x-forwarded-proto"], "http",
        "cleartext: {json}"
    );
}

both_paths!(host_routes_work_with_localhost_names_over_tls);
async fn host_routes_work_with_localhost_names_over_tls() {
    let (api, web) = two_upstreams().await;
    let secure = start_secure(&host_routes(&api, &web)).await;
    for (name, upstream) in [("api.localhost", "api"), ("web.localhost", "web")] {
        for protocol in ["--http2", "--http1.1"] {
            let resolve = format!("{name}:{}:127.0.0.1", secure.port());
            let url = secure.https(name, "/items");
            let (_, json) = curl_trusting(&secure, &[protocol, "--resolve", &resolve], &url).await;
            assert_eq!(json["upstream"], upstream, "{name} {protocol}");
        }
    }
}

both_paths!(python_ssl_verifies_with_the_ca_file_and_negotiates_alpn);
async fn python_ssl_verifies_with_the_ca_file_and_negotiates_alpn() {
    let (api, web) = two_upstreams().await;
    let secure = start_secure(&host_routes(&api, &web)).await;
    const SCRIPT: &str = r#"
import socket, ssl, sys
port, cafile = int(sys.argv[1]), sys.argv[2]
def connect(protocols):
    context = ssl.create_default_context(cafile=cafile)
    context.set_alpn_protocols(protocols)
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    return context.wrap_socket(raw, server_hostname="localhost")
with connect(["h2", "http/1.1"]) as tls:
    print("alpn", tls.selected_alpn_protocol())
    print("verified", tls.getpeercert()["subjectAltName"][0][1])
with connect(["http/1.1"]) as tls:
    print("alpn", tls.selected_alpn_protocol())
    tls.sendall(b"GET /from-python HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    answer = b""
    while chunk := tls.recv(65536):
        answer += chunk
    print(answer.decode().split("\r\n")[0])
    print("body", answer.split(b"\r\n\r\n", 1)[1].decode())
"#;
    let output = tokio::process::Command::new("python3")
        .args(["-c", SCRIPT, &secure.port().to_string()])
        .arg(&secure.ca_file)
        .output()
        .await
        .expect("python3 must be installed for the TLS tests (`apt-get install python3`)");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "python failed: {}\n{text}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "alpn h2");
    assert_eq!(lines[1], "verified localhost");
    assert_eq!(lines[2], "alpn http/1.1");
    assert_eq!(lines[3], "HTTP/1.1 200 OK");
    let body: serde_json::Value =
        serde_json::from_str(lines[4].strip_prefix("body ").expect("body")).expect("JSON");
    assert_eq!(body["path"], "/from-python");
    assert_eq!(body["upstream"], "web");
}

both_paths!(cleartext_http_and_h2c_stay_on_the_same_port);
async fn cleartext_http_and_h2c_stay_on_the_same_port() {
    let (api, web) = two_upstreams().await;
    let secure = start_secure(&host_routes(&api, &web)).await;
    let answer = get(&secure.running.url("/plain"), &[]).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json()["upstream"], "web");
    let url = secure.running.url("/h2c");
    let text = stdout(&curl(&["--http2-prior-knowledge", "-w", "\n%{http_version}", &url]).await);
    assert!(text.ends_with("\n2"), "{text}");
    assert!(text.contains("\"upstream\":\"web\""), "{text}");
}

both_paths!(an_untrusting_client_fails_the_handshake_and_the_listener_carries_on);
async fn an_untrusting_client_fails_the_handshake_and_the_listener_carries_on() {
    let (api, web) = two_upstreams().await;
    let secure = start_secure(&host_routes(&api, &web)).await;
    let url = secure.https("localhost", "/");
    // curl with only the system's CAs refuses the certificate (exit 60).
    let refused = curl(&["--http2", &url]).await;
    assert_eq!(refused.status.code(), Some(60), "{refused:?}");
    // A client that sends a handshake record and then garbage is closed.
    let mut stream = TcpStream::connect(secure.running.gateway)
        .await
        .expect("connect");
    stream
        .write_all(b"\x16\x03\x01\x00\x05hello garbage that is no TLS")
        .await
        .expect("write");
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        stream.read_to_end(&mut rest),
    )
    .await;
    assert!(closed.is_ok(), "the gateway closes a broken handshake");
    // What came back, if anything, is a TLS alert record (content type 21), never HTTP.
    assert!(rest.is_empty() || rest[0] == 21, "{rest:?}");
    // And the listener still serves both schemes.
    let (version, json) = curl_trusting(&secure, &["--http2"], &url).await;
    assert_eq!(
        (version.as_str(), json["upstream"].as_str()),
        ("2", Some("web"))
    );
    assert_eq!(get(&secure.running.url("/"), &[]).await.status, 200);
    // Both failed handshakes (curl's and the garbage) are counted.
    let metrics = get(&secure.running.url("/__sandbox/metrics"), &[])
        .await
        .body;
    let failed = metrics
        .lines()
        .find_map(|line| line.strip_prefix("sandbox_proxy_tls_handshake_failures_total "))
        .unwrap_or_else(|| panic!("the counter: {metrics}"));
    assert_eq!(failed, "2", "{metrics}");
}

/// An h2c upstream answering every call with its request's body and trailers (`grpc-status: 0`,
/// `grpc-message`, `x-trailer`).
async fn grpc_upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|request: Request<Incoming>| async move {
                    let body = request.into_body().collect().await.map(|b| b.to_bytes());
                    let mut trailers = HeaderMap::new();
                    trailers.insert("grpc-status", HeaderValue::from_static("0"));
                    trailers.insert("grpc-message", HeaderValue::from_static("over tls"));
                    trailers.insert("x-trailer", HeaderValue::from_static("kept"));
                    let frames: Vec<Result<Frame<Bytes>, Infallible>> = vec![
                        Ok(Frame::data(body.unwrap_or_default())),
                        Ok(Frame::trailers(trailers)),
                    ];
                    let mut response =
                        Response::new(StreamBody::new(futures_util::stream::iter(frames)));
                    response
                        .headers_mut()
                        .insert("content-type", HeaderValue::from_static("application/grpc"));
                    Ok::<_, Infallible>(response)
                });
                let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    address
}

/// A rustls client trusting only the CA file, offering `h2`, connected to the gateway as `name`.
async fn rustls_h2(
    secure: &Secure,
    name: &str,
) -> hyper::client::conn::http2::SendRequest<Full<Bytes>> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for certificate in
        rustls::pki_types::CertificateDer::pem_file_iter(&secure.ca_file).expect("CA")
    {
        roots.add(certificate.expect("CA PEM")).expect("root");
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let stream = TcpStream::connect(secure.running.gateway)
        .await
        .expect("connect");
    let server_name = rustls::pki_types::ServerName::try_from(name.to_string()).expect("name");
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(server_name, stream)
        .await
        .expect("a verified TLS handshake");
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .expect("HTTP/2 over TLS");
    tokio::spawn(connection);
    sender
}

both_paths!(grpc_over_tls_carries_trailers);
async fn grpc_over_tls_carries_trailers() {
    let upstream = grpc_upstream().await;
    let secure = start_secure(&format!(
        "services:\n  grpc:\n    external: http://{upstream}\n    http2: true\n\
         gateway:\n  routes:\n    - match: {{prefix: /demo.Echo/}}\n      service: grpc\n"
    ))
    .await;
    for name in ["localhost", "grpc.localhost"] {
        let mut client = rustls_h2(&secure, name).await;
        let message = Bytes::from_static(b"\0\0\0\0\x05hello");
        let request = Request::post(secure.https(name, "/demo.Echo/Unary"))
            .version(http::Version::HTTP_2)
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(Full::new(message.clone()))
            .expect("request");
        let response = client.send_request(request).await.expect("response");
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "application/grpc");
        let collected = response.into_body().collect().await.expect("body");
        let trailers = collected.trailers().cloned().expect("trailers over TLS");
        assert_eq!(trailers["grpc-status"], "0");
        assert_eq!(trailers["grpc-message"], "over tls");
        assert_eq!(trailers["x-trailer"], "kept");
        assert_eq!(collected.to_bytes(), message);
    }
}

/// Python's grpcio (BoringSSL inside), from the virtualenv `tests/peers/grpc/setup.sh` makes.
fn grpc_python() -> PathBuf {
    let python =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/peers/grpc/.venv/bin/python");
    assert!(
        python.exists(),
        "the gRPC peers are missing: run `sh tests/peers/grpc/setup.sh` (CI: .ci/setup)"
    );
    python
}

both_paths!(grpcio_secure_channel_calls_through_the_gateway);
async fn grpcio_secure_channel_calls_through_the_gateway() {
    let upstream = grpc_upstream().await;
    let secure = start_secure(&format!(
        "services:\n  grpc:\n    external: http://{upstream}\n    http2: true\n\
         gateway:\n  routes:\n    - match: {{prefix: /demo.Echo/}}\n      service: grpc\n"
    ))
    .await;
    const SCRIPT: &str = r#"
import sys, grpc
port, cafile = sys.argv[1], sys.argv[2]
credentials = grpc.ssl_channel_credentials(root_certificates=open(cafile, "rb").read())
with grpc.secure_channel(f"localhost:{port}", credentials) as channel:
    unary = channel.unary_unary("/demo.Echo/Unary", request_serializer=None, response_deserializer=None)
    response, call = unary.with_call(b"hello over tls", timeout=10)
    print(response.decode())
    print(call.code().name)
    print(dict(call.trailing_metadata()).get("x-trailer"))
"#;
    let output = tokio::process::Command::new(grpc_python())
        .args(["-c", SCRIPT, &secure.port().to_string()])
        .arg(&secure.ca_file)
        .output()
        .await
        .expect("run the gRPC peers' python");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "grpcio failed: {}\n{text}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        ["hello over tls", "OK", "kept"]
    );
}

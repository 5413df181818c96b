//! Helpers: in-process upstreams on port 0, a proxy started from manifest text, a small HTTP
//! client (HTTP/1.1 or HTTP/2 prior knowledge, by the test's variant), raw TCP exchanges and the
//! demo service binary.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use sandbox::manifest::{load, LoadOptions};
use sandbox::proxy::{NoStatus, Proxy, ProxyConfig, ProxySpan, ServiceStatus, SpanRecorder};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// An in-process upstream. Every answer is JSON naming the upstream and echoing the request:
/// `{"upstream", "method", "path", "query", "headers", "body"}`. Special paths:
/// `/status/N` answers N, `/delay/MS` waits first, `/flaky/N` answers 503 to its first N requests.
pub struct TestUpstream {
    pub name: String,
    pub address: SocketAddr,
    pub hits: Arc<AtomicUsize>,
    _shutdown: tokio_util::sync::DropGuard,
}

impl TestUpstream {
    pub async fn start(name: &str) -> TestUpstream {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind upstream");
        let address = listener.local_addr().expect("address");
        let hits = Arc::new(AtomicUsize::new(0));
        let flaky = Arc::new(AtomicUsize::new(0));
        let token = CancellationToken::new();
        let (name_owned, hits_task, cancel) = (name.to_string(), hits.clone(), token.clone());
        tokio::spawn(async move {
            loop {
                let (stream, _) = tokio::select! {
                    _ = cancel.cancelled() => return,
                    accepted = listener.accept() => match accepted { Ok(a) => a, Err(_) => continue },
                };
                let (name, hits, flaky) = (name_owned.clone(), hits_task.clone(), flaky.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |request| {
                        answer(name.clone(), hits.clone(), flaky.clone(), request)
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        TestUpstream {
            name: name.to_string(),
            address,
            hits,
            _shutdown: token.drop_guard(),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

async fn answer(
    name: String,
    hits: Arc<AtomicUsize>,
    flaky: Arc<AtomicUsize>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    hits.fetch_add(1, Ordering::SeqCst);
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|body| body.to_bytes())
        .unwrap_or_default();
    let path = parts.uri.path().to_string();
    let mut status = StatusCode::OK;
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        ["status", code] => {
            status = code
                .parse()
                .ok()
                .and_then(|code| StatusCode::from_u16(code).ok())
                .unwrap_or(StatusCode::OK)
        }
        ["delay", millis] => {
            tokio::time::sleep(Duration::from_millis(millis.parse().unwrap_or(0))).await
        }
        ["flaky", failures]
            if flaky.fetch_add(1, Ordering::SeqCst) < failures.parse().unwrap_or(0) =>
        {
            status = StatusCode::SERVICE_UNAVAILABLE;
        }
        _ => {}
    }
    let headers: HashMap<String, String> = parts
        .headers
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_str().unwrap_or("").to_string()))
        .collect();
    let json = serde_json::json!({
        "upstream": name,
        "method": parts.method.as_str(),
        "path": path,
        "query": parts.uri.query(),
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
    });
    let mut response = Response::new(Full::new(Bytes::from(json.to_string())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert("server", http::HeaderValue::from_static("test-upstream"));
    Ok(response)
}

tokio::task_local! {
    /// Whether the proxy under test serves HTTP/1.1 on its fast path (`Limits::fast_path`); set
    /// by `both_paths!` for each of a test's runs.
    pub static FAST_PATH: bool;
    /// Whether [`send`] and [`get`] speak HTTP/2 with prior knowledge (h2c) instead of HTTP/1.1;
    /// set by `both_paths!` (on in a test's `h2` run).
    pub static HTTP2: bool;
}

/// Runs `test` as one variant of a proxy test (what `both_paths!` expands to).
pub async fn variant(fast_path: bool, http2: bool, test: impl Future<Output = ()>) {
    FAST_PATH.scope(fast_path, HTTP2.scope(http2, test)).await
}

/// `tokio::spawn` that keeps the test's variant: a task that calls [`get`] or [`send`] speaks the
/// same protocol as the test that spawned it.
pub fn spawn<T: Send + 'static>(
    task: impl Future<Output = T> + Send + 'static,
) -> tokio::task::JoinHandle<T> {
    let (fast_path, http2) = (FAST_PATH.get(), HTTP2.get());
    tokio::spawn(FAST_PATH.scope(fast_path, HTTP2.scope(http2, task)))
}

/// A running proxy with its gateway (and mesh) address.
pub struct Running {
    pub proxy: Proxy,
    pub gateway: SocketAddr,
    pub mesh: SocketAddr,
    pub shutdown: CancellationToken,
    _directory: tempfile::TempDir,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl Running {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.gateway)
    }
}

/// A change to the config before the proxy starts (limits, sampling).
pub type Tweak = Box<dyn FnOnce(&mut ProxyConfig)>;

/// Options for [`start_with`].
#[derive(Default)]
pub struct Setup {
    pub status: Option<Arc<dyn ServiceStatus>>,
    pub recorder: Option<Arc<dyn SpanRecorder>>,
    pub tweak: Option<Tweak>,
}

/// Loads `yaml` as a manifest (failing the test with its errors).
pub fn config_from(yaml: &str) -> (ProxyConfig, tempfile::TempDir) {
    let directory = tempfile::tempdir().expect("temp dir");
    std::fs::write(directory.path().join("sandbox.yaml"), yaml).expect("write manifest");
    let options = LoadOptions {
        project: Some("test".into()),
        working_dir: directory.path().to_path_buf(),
        environment: Default::default(),
        ..LoadOptions::default()
    };
    let manifest = load(&options).unwrap_or_else(|errors| panic!("manifest:\n{errors}"));
    (ProxyConfig::from_manifest(&manifest), directory)
}

pub async fn start(yaml: &str) -> Running {
    start_with(yaml, Setup::default()).await
}

/// [`start_with`] a recorder that keeps every span, and that recorder.
pub async fn start_recorded(yaml: &str) -> (Running, Arc<Spans>) {
    let spans = Arc::new(Spans::default());
    let setup = Setup {
        recorder: Some(spans.clone()),
        ..Setup::default()
    };
    (start_with(yaml, setup).await, spans)
}

pub async fn start_with(yaml: &str, setup: Setup) -> Running {
    let (mut config, directory) = config_from(yaml);
    config.limits.fast_path = FAST_PATH
        .try_with(|fast_path| *fast_path)
        .expect("a proxy test runs inside `both_paths!`");
    if let Some(tweak) = setup.tweak {
        tweak(&mut config);
    }
    let status = setup.status.unwrap_or_else(|| Arc::new(NoStatus));
    let proxy = Proxy::new(config, status, setup.recorder);
    let shutdown = CancellationToken::new();
    let gateway = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind gateway");
    let mesh = TcpListener::bind("127.0.0.1:0").await.expect("bind mesh");
    let (gateway_address, mesh_address) = (
        gateway.local_addr().expect("address"),
        mesh.local_addr().expect("address"),
    );
    tokio::spawn(proxy.clone().serve_gateway(gateway, shutdown.clone()));
    tokio::spawn(proxy.clone().serve_mesh(mesh, shutdown.clone()));
    Running {
        proxy,
        gateway: gateway_address,
        mesh: mesh_address,
        shutdown,
        _directory: directory,
    }
}

/// A response read whole.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|_| panic!("not JSON: {}", self.body))
    }

    /// The upstream's echo of a request header.
    pub fn sent(&self, header: &str) -> Option<String> {
        self.json()["headers"][header].as_str().map(str::to_string)
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
    }
}

fn client() -> &'static Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>> {
    static CLIENT: OnceLock<
        Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    > = OnceLock::new();
    CLIENT.get_or_init(|| Client::builder(TokioExecutor::new()).build_http())
}

/// Whether this run's client speaks HTTP/2 (the `h2` variant of `both_paths!`).
pub fn http2() -> bool {
    HTTP2
        .try_with(|http2| *http2)
        .expect("a request helper runs inside `both_paths!` (or `util::spawn`)")
}

/// Sends `request` (an absolute URL) in this run's protocol: HTTP/1.1 on a pooled client, or over
/// a fresh HTTP/2 prior-knowledge connection, where a `Host` header becomes the `:authority`, as
/// HTTP/2 clients send it. The response as it arrives.
pub async fn respond(mut request: Request<Full<Bytes>>) -> Response<Incoming> {
    if !http2() {
        return client().request(request).await.expect("response");
    }
    let address = request.uri().authority().expect("an absolute URL").clone();
    if let Some(host) = request.headers_mut().remove(http::header::HOST) {
        let mut parts = request.uri().clone().into_parts();
        parts.authority = Some(host.to_str().expect("host").parse().expect("authority"));
        *request.uri_mut() = http::Uri::from_parts(parts).expect("URL");
    }
    let stream = TcpStream::connect(address.as_str()).await.expect("connect");
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .expect("HTTP/2 handshake");
    tokio::spawn(connection);
    sender.send_request(request).await.expect("response")
}

/// Sends one request ([`respond`]) and reads the answer whole.
pub async fn send(method: &str, url: &str, headers: &[(&str, &str)], body: &str) -> Answer {
    let mut request = Request::builder().method(method).uri(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("request");
    let (parts, body) = respond(request).await.into_parts();
    let body = body.collect().await.expect("body").to_bytes();
    Answer {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

pub async fn get(url: &str, headers: &[(&str, &str)]) -> Answer {
    send("GET", url, headers, "").await
}

/// Writes `bytes` on a fresh connection and reads until the server closes (or 5 s pass).
pub async fn raw(address: SocketAddr, bytes: &[u8]) -> String {
    let mut stream = TcpStream::connect(address).await.expect("connect");
    let _ = stream.write_all(bytes).await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// A recorder that keeps every span.
#[derive(Default)]
pub struct Spans(pub Mutex<Vec<ProxySpan>>);

impl SpanRecorder for Spans {
    fn record(&self, span: ProxySpan) {
        self.0.lock().expect("lock").push(span);
    }
}

impl Spans {
    pub fn take(&self) -> Vec<ProxySpan> {
        std::mem::take(&mut *self.0.lock().expect("lock"))
    }
}

/// The demo service binary, built once.
pub fn demo_binary() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let status = std::process::Command::new(env!("CARGO"))
                .args(["build", "-q", "-p", "sandbox-demo"])
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .status()
                .expect("cargo build -p sandbox-demo");
            assert!(status.success(), "building the demo failed");
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/debug/sandbox-demo")
        })
        .clone()
}

/// The demo service on a free port; killed on drop.
pub struct Demo {
    pub address: SocketAddr,
    child: std::process::Child,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub async fn start_demo() -> Demo {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
        listener.local_addr().expect("address").port()
    };
    let child = std::process::Command::new(demo_binary())
        .env("PORT", port.to_string())
        .env("SERVICE_NAME", "demo")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start demo");
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    for _ in 0..100 {
        if TcpStream::connect(address).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Demo { address, child }
}

/// A manifest with one external service per upstream (named as the upstream) and `extra` appended.
pub fn manifest(upstreams: &[&TestUpstream], gateway: &str) -> String {
    let mut yaml = String::from("services:\n");
    for upstream in upstreams {
        yaml.push_str(&format!(
            "  {}:\n    external: {}\n",
            upstream.name,
            upstream.url()
        ));
    }
    yaml.push_str(gateway);
    yaml
}

/// The access log (`sandbox::access`) written while it lives, for tests that read its lines.
pub struct AccessLog {
    lines: LogBuffer,
    _guard: tracing::subscriber::DefaultGuard,
}

#[derive(Clone, Default)]
struct LogBuffer(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl AccessLog {
    /// Starts collecting on this thread (the test's runtime must be current-thread).
    pub fn capture() -> AccessLog {
        let lines = LogBuffer::default();
        let writer = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter("sandbox::access=info")
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        AccessLog {
            lines,
            _guard: tracing::subscriber::set_default(subscriber),
        }
    }

    /// What was written so far.
    pub fn text(&self) -> String {
        String::from_utf8(self.lines.0.lock().expect("lock").clone()).expect("utf-8")
    }
}

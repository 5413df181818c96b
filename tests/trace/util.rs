//! Helpers: start a server on port 0, send requests, build spans.

use std::net::SocketAddr;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use sandbox::trace::{
    serve_listeners, Endpoint, Kind, Listeners, Span, SpanId, Store, TraceConfig, TraceId,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// A running in-process trace server.
pub struct TestServer {
    pub address: SocketAddr,
    pub store: Store,
    pub shutdown: CancellationToken,
    pub task: tokio::task::JoinHandle<()>,
    client: Client<HttpConnector, Full<Bytes>>,
}

/// A response, read whole.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub async fn start() -> TestServer {
    start_with(TraceConfig::default()).await
}

pub async fn start_with(config: TraceConfig) -> TestServer {
    start_listening(config, Vec::new()).await
}

/// A server with an OTLP listener as well; its address is the second value.
pub async fn start_with_otlp(config: TraceConfig) -> (TestServer, SocketAddr) {
    let otlp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = otlp.local_addr().unwrap();
    (start_listening(config, vec![otlp]).await, address)
}

async fn start_listening(config: TraceConfig, otlp: Vec<TcpListener>) -> TestServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let store = Store::new(config.max_spans);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn({
        let (store, shutdown) = (store.clone(), shutdown.clone());
        let listeners = Listeners {
            zipkin: vec![listener],
            otlp,
        };
        async move {
            serve_listeners(listeners, store, config, shutdown)
                .await
                .unwrap()
        }
    });
    TestServer {
        address,
        store,
        shutdown,
        task,
        client: Client::builder(TokioExecutor::new()).build_http(),
    }
}

impl TestServer {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.address, path)
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Reply {
        self.send_to(self.address, method, path, headers, body)
            .await
    }

    /// [`TestServer::send`] to another of the server's listeners (an OTLP one).
    pub async fn send_to(
        &self,
        address: SocketAddr,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Reply {
        let url = format!("http://{address}{path}");
        let mut request = Request::builder().method(method).uri(url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = self
            .client
            .request(request.body(Full::new(body.into())).unwrap())
            .await
            .unwrap();
        let (parts, body) = response.into_parts();
        Reply {
            status: parts.status,
            headers: parts.headers,
            body: body.collect().await.unwrap().to_bytes(),
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, &[], Bytes::new()).await
    }

    pub async fn post(&self, path: &str, content_type: &str, body: impl Into<Bytes>) -> Reply {
        self.send(Method::POST, path, &[("content-type", content_type)], body)
            .await
    }

    pub async fn post_json(&self, body: &str) -> Reply {
        self.post("/api/v2/spans", "application/json", body.to_owned())
            .await
    }
}

/// Now, in epoch microseconds.
pub fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

/// A span `ms_ago` milliseconds old.
pub fn span(
    trace: u128,
    id: u64,
    parent: Option<u64>,
    service: &str,
    name: &str,
    ms_ago: u64,
) -> Span {
    let mut span = Span::new(TraceId(trace), SpanId(id));
    span.parent_id = parent.map(SpanId);
    span.name = Some(name.to_owned());
    span.timestamp = Some(now_micros() - ms_ago * 1000);
    span.duration = Some(1000 * id);
    span.local_endpoint = Some(Endpoint::service(service));
    span.kind = Some(Kind::Server);
    span
}

/// The trace ids of a `/api/v2/traces` answer, in order.
pub fn trace_ids(reply: &Reply) -> Vec<String> {
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    reply
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t[0]["traceId"].as_str().unwrap().to_owned())
        .collect()
}

/// A string list answer.
pub fn strings(reply: &Reply) -> Vec<String> {
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    serde_json::from_slice(&reply.body).unwrap()
}

/// Posts one span of service `svc` in trace 1.
pub async fn seed_one(server: &TestServer) {
    let body = sandbox::trace::codec::json::encode(&[span(1, 1, None, "svc", "op", 1)]);
    let reply = server.post("/api/v2/spans", "application/json", body).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.text());
}

//! The HTTP client smoke checks use: one request, a bounded body, a timeout.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// Largest response body kept (the rest is cut; checks see what fits).
pub const MAX_BODY: usize = 1024 * 1024;

/// An answer, as far as checks need it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Response {
    pub status: u16,
    /// Lower-case names; repeated headers joined with `, `.
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

/// Sends one request; `Err` is the reason in words (connection refused, timeout, ...).
pub async fn send(
    method: &str,
    url: &str,
    headers: &BTreeMap<String, String>,
    body: Option<&str>,
    timeout: Duration,
) -> Result<Response, String> {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut builder = http::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        builder = builder.header(name, value);
    }
    let request = builder
        .body(Full::new(Bytes::from(body.unwrap_or_default().to_string())))
        .map_err(|error| format!("cannot build the request: {error}"))?;
    let exchange = async {
        let response = client
            .request(request)
            .await
            .map_err(|error| describe(&error))?;
        let status = response.status().as_u16();
        let mut names: BTreeMap<String, String> = BTreeMap::new();
        for (name, value) in response.headers() {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            names
                .entry(name.as_str().to_string())
                .and_modify(|existing| {
                    existing.push_str(", ");
                    existing.push_str(&value);
                })
                .or_insert(value);
        }
        let body = match Limited::new(response.into_body(), MAX_BODY).collect().await {
            Ok(collected) => String::from_utf8_lossy(&collected.to_bytes()).into_owned(),
            Err(error) => format!("(body not read: {error})"),
        };
        Ok(Response {
            status,
            headers: names,
            body,
        })
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(result) => result,
        Err(_) => Err(format!(
            "no answer within {}",
            crate::manifest::duration_text::format(timeout)
        )),
    }
}

fn describe(error: &hyper_util::client::legacy::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

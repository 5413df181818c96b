//! A tiny gRPC server for `bench/proxy.sh`: cleartext HTTP/2 with prior knowledge (h2c), on one
//! thread. `/bench.Echo/Unary` answers each call with the request's message (one length-prefixed
//! gRPC message, read whole) and `grpc-status: 0` in the trailers; any other method gets
//! `grpc-status: 12` (UNIMPLEMENTED). It is the upstream the proxies are measured in front of,
//! not the product.
//!
//! `grpc_upstream LISTEN` — `host:port`; serves until killed.

use std::convert::Infallible;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::server::conn::http2;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

type Frames = futures_util::stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, Infallible>>>;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listen = std::env::args()
        .nth(1)
        .ok_or("usage: grpc_upstream LISTEN")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = TcpListener::bind(&listen).await?;
        loop {
            let (stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let _ = http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service_fn(answer))
                    .await;
            });
        }
    })
}

async fn answer(request: Request<Incoming>) -> Result<Response<StreamBody<Frames>>, Infallible> {
    let unary = request.uri().path() == "/bench.Echo/Unary";
    // The request's message, already framed (5-byte prefix + bytes): echoed as it came.
    let message = match request.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let mut frames = Vec::with_capacity(2);
    let status = if unary {
        frames.push(Ok(Frame::data(message)));
        "0"
    } else {
        "12"
    };
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from_static(status));
    frames.push(Ok(Frame::trailers(trailers)));
    let mut response = Response::new(StreamBody::new(futures_util::stream::iter(frames)));
    response.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("application/grpc+proto"),
    );
    Ok(response)
}

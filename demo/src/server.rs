//! The HTTP server: an accept loop with a cap on concurrent connections, one thread per connection with
//! keep-alive, and dispatch (own routes first, then built-ins) with a SERVER span per request.

use std::io::{BufReader, BufWriter, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::app::App;
use crate::http::request::{read_body, read_request_head, Framing, Request};
use crate::http::response::{write_response, Response, Then};
use crate::http::ReadError;
use crate::routes::{percent_decode, Action, Params};
use crate::trace::span::Start;
use crate::trace::{self, Context, Kind, Span};
use crate::{builtin, call, log, websocket};

/// How long a connection may stay silent (between requests, or within one).
const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a WebSocket may stay silent.
const WEBSOCKET_TIMEOUT: Duration = Duration::from_secs(600);

/// Accepts connections until the process exits.
pub fn serve(listener: TcpListener, app: Arc<App>) {
    let active = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(stream) => stream,
            Err(error) => {
                log::warn(&format!("accepting a connection: {error}"));
                std::thread::sleep(Duration::from_millis(10)); // e.g. out of file descriptors
                continue;
            }
        };
        if active.fetch_add(1, Ordering::SeqCst) >= app.config.max_connections {
            active.fetch_sub(1, Ordering::SeqCst);
            reject(stream, app.service());
            continue;
        }
        let (app, guard) = (app.clone(), ActiveGuard(active.clone()));
        let spawned = std::thread::Builder::new().spawn(move || {
            let _guard = guard;
            connection(stream, &app);
        });
        if let Err(error) = spawned {
            log::warn(&format!("starting a connection thread: {error}"));
        }
    }
}

/// Decrements the active-connection count when the connection thread ends.
struct ActiveGuard(Arc<AtomicUsize>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn reject(mut stream: TcpStream, service: &str) {
    let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
    let response = Response::error(503, "too many connections", service);
    let _ = write_response(&mut stream, &response, false, true);
}

/// Serves requests on one connection until it closes, fails or is not kept alive.
fn connection(stream: TcpStream, app: &App) {
    let _ = stream.set_read_timeout(Some(READ_TIMEOUT));
    let _ = stream.set_write_timeout(Some(READ_TIMEOUT));
    let _ = stream.set_nodelay(true);
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut writer = BufWriter::new(stream);
    loop {
        let started = Instant::now();
        let request = match read_request(&mut reader, &mut writer) {
            Ok(request) => request,
            Err(ReadError::Invalid(status, message)) => {
                let _ = write_response(
                    &mut writer,
                    &Response::error(status, &message, app.service()),
                    false,
                    true,
                );
                log::request("-", "-", status, started.elapsed());
                return;
            }
            Err(ReadError::Closed | ReadError::Io(_)) => return,
        };
        let response = exchange(app, &request, &mut writer, started);
        let keep_alive = request.keep_alive() && response.then == Then::Continue;
        match response.then {
            Then::Continue if keep_alive => {}
            Then::Continue | Then::Close => return,
            Then::Exit(code) => app.exit(
                code,
                &format!("asked by {} {}", request.method, request.path),
            ),
            Then::WebSocket => {
                let _ = writer.get_ref().set_read_timeout(Some(WEBSOCKET_TIMEOUT));
                let _ = websocket::serve(&mut reader, &mut writer);
                return;
            }
        }
    }
}

/// Reads a request head and body, sending `100 Continue` when the client waits for it.
fn read_request(
    reader: &mut BufReader<TcpStream>,
    writer: &mut impl Write,
) -> Result<Request, ReadError> {
    let mut request = read_request_head(reader)?;
    let framing = request.framing()?;
    if request.expects_continue() && framing != Framing::Empty {
        writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        writer.flush()?;
    }
    read_body(reader, &mut request, framing)?;
    Ok(request)
}

/// Answers one request: dispatch, write, log, report. Returns the response (for what happens next).
fn exchange(app: &App, request: &Request, writer: &mut impl Write, started: Instant) -> Response {
    let span_start = Start::now();
    let context = server_context(app, request);
    let (pattern, response) = dispatch(app, request, context.as_ref());
    let keep_alive = request.keep_alive() && response.then == Then::Continue;
    let close = !keep_alive && response.then != Then::WebSocket;
    let _ = write_response(writer, &response, request.method == "HEAD", close);
    log::request(
        &request.method,
        &request.path,
        response.status,
        started.elapsed(),
    );
    // Health probes run every second or so: like the usual instrumentations (Spring's actuator
    // endpoints), they are not traced, so traces show the service's real work.
    if let Some(context) = context.filter(|_| request.path != "/health") {
        app.report(server_span(
            app,
            request,
            pattern.as_deref(),
            response.status,
            context,
            span_start,
        ));
    }
    response
}

/// The context of this request's SERVER span: joined from the caller, or a new trace when reporting.
fn server_context(app: &App, request: &Request) -> Option<Context> {
    let reporting = app.reporter.is_some();
    let mut context = match trace::extract(&request.headers) {
        Some(context) => context,
        None if reporting => Context::new_root(None),
        None => return None,
    };
    if reporting && context.sampled.is_none() {
        context.sampled = Some(true); // this service makes the sampling decision
    }
    Some(context)
}

/// Own routes first, then built-ins, else 404. Returns the matched pattern for the span name.
fn dispatch(app: &App, request: &Request, context: Option<&Context>) -> (Option<String>, Response) {
    for route in &app.config.routes {
        if let Some(params) = route.matches(&request.method, &request.path) {
            let response = run_action(app, &route.action, &params, context);
            return (Some(route.pattern.text.clone()), response);
        }
    }
    match builtin::handle(app, request) {
        Some((pattern, response)) => (Some(pattern.to_string()), response),
        None => (
            None,
            Response::error(
                404,
                &format!("no route for {} {}", request.method, request.path),
                app.service(),
            ),
        ),
    }
}

fn run_action(app: &App, action: &Action, params: &Params, context: Option<&Context>) -> Response {
    match action {
        Action::Respond {
            status,
            content_type,
            body,
        } => {
            let text = if content_type.starts_with("application/json") {
                body.render(params, |value| crate::json::escape(&percent_decode(value)))
            } else {
                body.render(params, percent_decode)
            };
            Response::new(*status, content_type, text)
        }
        Action::Call(calls) => call::respond(app, calls, params, context),
    }
}

fn server_span(
    app: &App,
    request: &Request,
    pattern: Option<&str>,
    status: u16,
    context: Context,
    start: Start,
) -> Span {
    let (timestamp, duration) = start.finish();
    let method = request.method.to_lowercase();
    let mut tags = vec![
        ("http.method".to_string(), request.method.clone()),
        ("http.path".to_string(), request.path.clone()),
        ("http.status_code".to_string(), status.to_string()),
    ];
    if status >= 500 {
        tags.push(("error".to_string(), status.to_string()));
    }
    Span {
        context,
        kind: Kind::Server,
        name: match pattern {
            Some(pattern) => format!("{method} {}", pattern.to_lowercase()),
            None => method,
        },
        timestamp,
        duration,
        local_service: app.service().to_string(),
        remote_service: None,
        tags,
    }
}

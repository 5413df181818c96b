//! # sandbox-demo
//!
//! A small HTTP service for sandbox's examples and tests: own routes from `ROUTES` (fixed answers and
//! downstream calls), built-in test endpoints, B3/W3C propagation and Zipkin span reporting. Std only (plus
//! `libc` for signals) so it builds static for `FROM scratch` images.
//!
//! # Layout
//! - [`cli`]: arguments → [`cli::Command`].
//! - [`config`]: environment → [`config::Config`].
//! - [`routes`]: the `ROUTES` syntax: parsing, templates, matching.
//! - [`server`]: accept loop, connections, dispatch; [`builtin`] and [`call`] answer requests.
//! - [`http`]: the wire format and a minimal client; [`websocket`] the `/ws` echo.
//! - [`trace`]: propagation headers, spans and the Zipkin reporter.
//! - [`app`]: shared state; [`shutdown`]: signals; [`probe`]: the health-check subcommand.
//! - [`json`], [`digest`], [`log`]: small helpers.

pub mod app;
pub mod builtin;
pub mod call;
pub mod cli;
pub mod config;
pub mod digest;
pub mod http;
pub mod json;
pub mod log;
pub mod probe;
pub mod routes;
pub mod server;
pub mod shutdown;
pub mod trace;
pub mod websocket;

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use cli::Command;

/// Runs the program with `args` (without the program name); returns the exit code.
/// Exit codes: 0 success, 1 bad arguments or configuration, a failed probe, or a port that cannot be bound.
pub fn run(args: &[String]) -> i32 {
    match cli::parse(args) {
        Err(message) => {
            eprintln!("error: {message}\n\n{}", cli::USAGE);
            1
        }
        Ok(Command::Help) => {
            println!("{}", cli::USAGE);
            0
        }
        Ok(Command::Exit(code)) => {
            eprintln!("sandbox-demo: exiting with code {code} (--exit)");
            code
        }
        Ok(Command::Probe { url, timeout }) => probe::run(&url, timeout),
        Ok(Command::Serve { listen_after }) => match serve(listen_after) {
            Ok(()) => 0,
            Err(message) => {
                eprintln!("error: {message}");
                1
            }
        },
    }
}

/// Reads the environment, waits `listen_after`, listens on `0.0.0.0:PORT` and serves until a signal.
fn serve(listen_after: Duration) -> Result<(), String> {
    shutdown::block_signals(); // before any thread starts, so every thread inherits the mask
    let config = config::from_env(|name| std::env::var(name).ok())?;
    let app = Arc::new(app::App::new(config));
    shutdown::spawn_waiter(app.clone());
    if !listen_after.is_zero() {
        log::info(&format!(
            "{} waiting {} ms before listening (--listen-after)",
            app.service(),
            listen_after.as_millis()
        ));
        std::thread::sleep(listen_after);
    }
    let port = app.config.port;
    let listener = TcpListener::bind(("0.0.0.0", port))
        .map_err(|e| format!("cannot listen on port {port}: {e}"))?;
    let routes: Vec<String> = app
        .config
        .routes
        .iter()
        .map(routes::Route::describe)
        .collect();
    log::info(&format!(
        "{} listening on 0.0.0.0:{port}; routes: [{}]; zipkin: {}",
        app.service(),
        routes.join("; "),
        app.config
            .zipkin
            .as_ref()
            .map_or("off".to_string(), |url| format!(
                "http://{}{}",
                url.authority(),
                url.target
            )),
    ));
    server::serve(listener, app);
    Ok(())
}

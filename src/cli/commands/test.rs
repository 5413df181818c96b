//! `sandbox test`: the manifest's smoke checks against the running sandbox — a table, JUnit XML for
//! CI, and for each failure the request, the response, the trace as a waterfall with the log lines
//! joined to it under their spans, and the last log lines of every service on the trace's path.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::cli::{context, GlobalArgs};
use crate::control::ControlPlaneState;
use crate::engine::Docker;
use crate::manifest::Manifest;
use crate::output::{table, waterfall, Printer};
use crate::smoke::{self, CheckOutcome, Endpoints};

/// Exit code when a check fails.
pub const EXIT_SMOKE_FAILED: u8 = 7;
/// Log lines shown per service for a failed check.
const FAILURE_LOG_LINES: usize = 10;
/// How long a failure report waits for the failing requests' log lines to reach the engine.
const LOG_SETTLE: std::time::Duration = std::time::Duration::from_millis(300);

#[derive(Debug, Clone, clap::Args)]
pub struct TestArgs {
    /// Write a JUnit XML report here.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Only the checks with these names.
    pub names: Vec<String>,
}

pub async fn run(global: &GlobalArgs, args: TestArgs, printer: &Printer) -> anyhow::Result<u8> {
    let manifest = context::load_manifest(global)?;
    let Some(state) = ControlPlaneState::read_live(&manifest.project) else {
        return Err(context::UsageError {
            message: format!(
                "project `{}` is not up\n  hint: start it with `sandbox up -d`, or use `sandbox run` to bring it up, test and tear down",
                manifest.project
            ),
        }
        .into());
    };
    let docker = Docker::connect().await?;
    let endpoints = endpoints(
        &docker,
        &manifest,
        state.gateway.clone(),
        state.zipkin.clone(),
    )
    .await?;
    run_checks(&docker, &manifest, &endpoints, &args, global.json, printer).await
}

/// Where the sandbox answers: the control plane's URLs and each service's loopback publish.
pub async fn endpoints(
    docker: &Docker,
    manifest: &Manifest,
    gateway: Option<String>,
    zipkin: Option<String>,
) -> anyhow::Result<Endpoints> {
    let mut services = BTreeMap::new();
    for container in docker.project_containers(&manifest.project).await? {
        let Some(port) = manifest
            .services
            .get(&container.service)
            .and_then(|service| service.port)
        else {
            continue;
        };
        if container.state != "running" || services.contains_key(&container.service) {
            continue;
        }
        let address = container
            .ports
            .iter()
            .find(|publish| publish.container_port == port)
            .and_then(|publish| publish.local_address());
        if let Some(address) = address {
            services.insert(container.service.clone(), format!("http://{address}"));
        }
    }
    Ok(Endpoints {
        gateway,
        services,
        zipkin,
    })
}

/// Runs the (selected) checks, reports them, and returns the exit code.
pub async fn run_checks(
    docker: &Docker,
    manifest: &Manifest,
    endpoints: &Endpoints,
    args: &TestArgs,
    json: bool,
    printer: &Printer,
) -> anyhow::Result<u8> {
    for name in &args.names {
        if !manifest.smoke.iter().any(|check| &check.name == name) {
            let known: Vec<&str> = manifest
                .smoke
                .iter()
                .map(|check| check.name.as_str())
                .collect();
            return Err(context::UsageError {
                message: format!(
                    "no smoke check named `{name}`\n  hint: the checks are: {}",
                    known.join(", ")
                ),
            }
            .into());
        }
    }
    let checks: Vec<smoke::Check> = manifest
        .smoke
        .iter()
        .filter(|check| args.names.is_empty() || args.names.contains(&check.name))
        .cloned()
        .collect();
    if checks.is_empty() {
        printer.stderr_line(&format!(
            "{} has no smoke checks; add a `smoke:` list",
            manifest.file.display()
        ));
        return Ok(0);
    }
    let outcomes = smoke::run_checks(&checks, endpoints).await;
    if let Some(path) = &args.junit {
        std::fs::write(path, smoke::junit::render("sandbox smoke", &outcomes)).map_err(
            |error| {
                anyhow::anyhow!(
                    "cannot write the JUnit report to {}: {error}",
                    path.display()
                )
            },
        )?;
    }
    if json {
        printer.stdout_line(&serde_json::to_string_pretty(&outcomes)?);
    } else {
        report(docker, manifest, endpoints, &outcomes, printer).await;
    }
    Ok(if outcomes.iter().all(|outcome| outcome.passed) {
        0
    } else {
        EXIT_SMOKE_FAILED
    })
}

async fn report(
    docker: &Docker,
    manifest: &Manifest,
    endpoints: &Endpoints,
    outcomes: &[CheckOutcome],
    printer: &Printer,
) {
    let rows: Vec<Vec<String>> = outcomes
        .iter()
        .map(|outcome| {
            vec![
                if outcome.passed {
                    "✔ pass".into()
                } else {
                    "✘ FAIL".into()
                },
                outcome.name.clone(),
                outcome
                    .response
                    .as_ref()
                    .map(|response| response.status.to_string())
                    .unwrap_or_else(|| "-".into()),
                format!("{} ms", outcome.duration_ms),
                if outcome.attempts > 1 {
                    format!("{} attempts", outcome.attempts)
                } else {
                    String::new()
                },
            ]
        })
        .collect();
    printer.stdout_text(&table::render(
        &["RESULT", "CHECK", "STATUS", "TIME", ""],
        &rows,
    ));
    if outcomes.iter().any(|outcome| !outcome.passed) {
        // Services usually log a request after answering it, and the engine passes container
        // output on asynchronously: the failing request's own log lines need a moment to arrive.
        tokio::time::sleep(LOG_SETTLE).await;
    }
    let containers = docker
        .project_containers(&manifest.project)
        .await
        .unwrap_or_default();
    for outcome in outcomes.iter().filter(|outcome| !outcome.passed) {
        let mut text = format!(
            "\n── {} ──\n{} {}\n",
            outcome.name, outcome.method, outcome.url
        );
        for failure in &outcome.failures {
            text.push_str(&format!("  ✘ {failure}\n"));
        }
        if let Some(response) = &outcome.response {
            text.push_str(&format!("response: {}\n", response.status));
            for (name, value) in &response.headers {
                text.push_str(&format!("  {name}: {value}\n"));
            }
            let body: String = response.body.chars().take(2000).collect();
            if !body.is_empty() {
                text.push_str(&format!("  {}\n", body.replace('\n', "\n  ")));
            }
        }
        if let Some(trace_id) = &outcome.trace_id {
            let link = endpoints
                .zipkin
                .as_ref()
                .map(|zipkin| format!("{zipkin}/zipkin/#/trace/{trace_id}"));
            // The lines every service wrote on this trace, under the spans they belong to.
            let logs = match &endpoints.zipkin {
                Some(zipkin) => smoke::trace_logs(zipkin, trace_id).await,
                None => Vec::new(),
            };
            text.push_str(&waterfall::render_with_logs(
                &outcome.trace,
                link.as_deref(),
                &logs,
                false,
            ));
        }
        // The services the request went through, or the one it was sent to.
        let mut services = outcome.services_on_path();
        services.retain(|service| manifest.services.contains_key(service));
        if services.is_empty() {
            if let Some(check) = manifest
                .smoke
                .iter()
                .find(|check| check.name == outcome.name)
            {
                if let smoke::Target::Service(service) = &check.target {
                    services.push(service.clone());
                }
            }
        }
        for service in services {
            for container in containers
                .iter()
                .filter(|container| container.service == service)
            {
                text.push_str(&format!("last log lines of {}:\n", container.name));
                for line in docker
                    .last_log_lines(&container.id, FAILURE_LOG_LINES)
                    .await
                {
                    text.push_str(&format!("  | {line}\n"));
                }
            }
        }
        printer.stdout_text(&text);
    }
    let failed = outcomes.iter().filter(|outcome| !outcome.passed).count();
    printer.stderr_line(&format!(
        "{} passed, {failed} failed",
        outcomes.len() - failed
    ));
}

//! `sandbox ps`: the project's replicas, as a table or one JSON object; the mesh's forwarders,
//! which are no service's replicas, on a line of their own (under `mesh` in the JSON).

use crate::cli::{context, GlobalArgs};
use crate::control::ControlPlaneState;
use crate::engine::docker::ObservedContainer;
use crate::engine::status::{self, format_age};
use crate::engine::Docker;
use crate::output::{table, Printer};

#[derive(Debug, clap::Args)]
pub struct PsArgs {}

pub async fn run(global: &GlobalArgs, _args: PsArgs, printer: &Printer) -> anyhow::Result<u8> {
    let (project, manifest) = context::project_name(global)?;
    let docker = Docker::connect().await?;
    // Probes taken from the images, as `up` took them; an image without one is shown unhealthy.
    let manifest = match manifest {
        Some(manifest) => Some(
            crate::engine::image::from_images(&docker, &manifest, &[])
                .await
                .unwrap_or(manifest),
        ),
        None => None,
    };
    let replicas = status::project_status(&docker, &project, manifest.as_ref()).await?;
    let forwarders = docker.mesh_forwarders(&project).await?;
    let control_plane = ControlPlaneState::read_live(&project);
    if global.json {
        let mesh: Vec<serde_json::Value> = forwarders
            .iter()
            .map(|forwarder| {
                serde_json::json!({
                    "service": forwarder.service,
                    "name": forwarder.name,
                    "state": forwarder.state,
                    "status": forwarder.status,
                })
            })
            .collect();
        let document = serde_json::json!({
            "project": project,
            "pid": control_plane.as_ref().map(|state| state.pid),
            "gateway": control_plane.as_ref().and_then(|state| state.gateway.clone()),
            "zipkin": control_plane.as_ref().and_then(|state| state.zipkin.clone()),
            "otlp_http": control_plane.as_ref().and_then(|state| state.otlp_http.clone()),
            "otlp_grpc": control_plane.as_ref().and_then(|state| state.otlp_grpc.clone()),
            "services": replicas,
            "mesh": mesh,
        });
        printer.stdout_line(&serde_json::to_string_pretty(&document)?);
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = replicas
        .iter()
        .map(|replica| {
            let ports: Vec<String> = replica
                .ports
                .iter()
                .map(|port| {
                    format!(
                        "{}:{}->{}/{}",
                        port.host_ip, port.host_port, port.container_port, port.protocol
                    )
                })
                .collect();
            vec![
                replica.name.clone(),
                replica.service.clone(),
                replica.state.clone(),
                replica.health.clone(),
                ports.join(", "),
                format_age(replica.age_seconds),
            ]
        })
        .collect();
    printer.stdout_text(&table::render(
        &["NAME", "SERVICE", "STATE", "HEALTH", "PORTS", "CREATED"],
        &rows,
    ));
    if let Some(line) = mesh_line(&forwarders) {
        printer.stderr_line(&line);
    }
    if let Some(state) = control_plane {
        printer.stderr_line(&format!("control plane: pid {}", state.pid));
    }
    Ok(0)
}

/// `mesh: item, user` — the services whose forwarders run, and any forwarder that does not.
fn mesh_line(forwarders: &[ObservedContainer]) -> Option<String> {
    if forwarders.is_empty() {
        return None;
    }
    let running: Vec<&str> = forwarders
        .iter()
        .filter(|forwarder| forwarder.state == "running")
        .map(|forwarder| forwarder.service.as_str())
        .collect();
    let mut line = format!("mesh: {}", running.join(", "));
    if running.is_empty() {
        line = "mesh: no forwarder running".to_string();
    }
    for forwarder in forwarders
        .iter()
        .filter(|forwarder| forwarder.state != "running")
    {
        line.push_str(&format!(
            "; forwarder {} {} ({})",
            forwarder.name, forwarder.state, forwarder.status
        ));
    }
    Some(line)
}

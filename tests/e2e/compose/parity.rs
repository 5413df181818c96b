//! The parity harness: one compose file, brought up once by the machine's `docker-compose` (project
//! `<project>-dc`) and once by sandbox (project `<project>`), each inspected with the docker CLI,
//! then compared on a list of JSON pointers with every difference reported at once.
//!
//! The two runs are one after the other (compose first, torn down before sandbox starts), so a
//! file may use fixed container names or host ports. Images must exist beforehand
//! ([`busybox_image`]): docker-compose would otherwise try to pull them, and there is no registry.
//!
//! ```ignore
//! let project = Project::new("caps");
//! let image = busybox_image(&project);
//! let file = write_compose(&project, &format!("services:\n  web:\n    image: {image}\n    cap_add: [NET_ADMIN]\n"));
//! let (compose, sandbox) = containers(&project, &file, Up::Detached, "web");
//! assert_same("web", &compose, &sandbox, &[Check::Equal("/HostConfig/CapAdd")]);
//! ```

// A harness shared by the compose modules: not every helper is used by every module.
#![allow(dead_code)]

use std::process::{Command, Output, Stdio};

use serde_json::Value;

use crate::util::{busybox_context, Project};

/// The compose file name the harness writes (compose's own first choice).
pub const COMPOSE_FILE: &str = "compose.yaml";

/// Writes `body` as the project's compose file; returns its name (relative to the project folder).
pub fn write_compose(project: &Project, body: &str) -> String {
    project.write(COMPOSE_FILE, body);
    COMPOSE_FILE.to_string()
}

/// Builds the busybox test image with `docker build` (no registry, no pull) and returns its tag.
pub fn busybox_image(project: &Project) -> String {
    let context = project.path("bb");
    let tag = busybox_context(&context);
    let exists = Command::new("docker")
        .args(["image", "inspect", "--format", "{{.Id}}", &tag])
        .output()
        .is_ok_and(|output| output.status.success());
    if !exists {
        let output = Command::new("docker")
            .args(["build", "-q", "-t", &tag])
            .arg(&context)
            .output()
            .expect("run docker build");
        assert!(
            output.status.success(),
            "docker build of the busybox test image failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    tag
}

/// Which tool brought the file up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    Compose,
    Sandbox,
}

/// How sandbox brings the file up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Up {
    /// `up -d`: started, not waited on.
    Detached,
    /// `up -d --wait`: every service started (and healthy where it has a check).
    Wait,
}

/// One tool's project on the engine: finds its containers, networks and volumes by its labels and
/// names, and inspects them.
pub struct Side {
    pub tool: Tool,
    /// The project name on the engine (`<project>-dc` for docker-compose).
    pub project: String,
}

impl Side {
    fn labels(&self) -> (&'static str, &'static str, &'static str) {
        match self.tool {
            Tool::Compose => (
                "com.docker.compose.project",
                "com.docker.compose.service",
                "com.docker.compose.container-number",
            ),
            Tool::Sandbox => (
                "dev.sandbox.project",
                "dev.sandbox.service",
                "dev.sandbox.replica",
            ),
        }
    }

    /// The ids of `service`'s containers, ordered by replica number.
    pub fn container_ids(&self, service: &str) -> Vec<String> {
        let (project_label, service_label, number_label) = self.labels();
        let format = format!("{{{{.ID}}}} {{{{.Label \"{number_label}\"}}}}");
        let output = docker(&[
            "ps",
            "-a",
            "--filter",
            &format!("label={project_label}={}", self.project),
            "--filter",
            &format!("label={service_label}={service}"),
            "--format",
            &format,
        ]);
        let mut found: Vec<(u32, String)> = String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| {
                let (id, number) = line.split_once(' ')?;
                Some((number.parse().unwrap_or(0), id.to_string()))
            })
            .collect();
        found.sort();
        found.into_iter().map(|(_, id)| id).collect()
    }

    /// `docker inspect` of the first container of `service`.
    pub fn container(&self, service: &str) -> Value {
        let ids = self.container_ids(service);
        let id = ids.first().unwrap_or_else(|| {
            panic!(
                "{:?} made no container for service `{service}` (project `{}`)",
                self.tool, self.project
            )
        });
        inspect(&["container", "inspect", id])
    }

    /// `docker network inspect` of the project's network `name` (`<project>_<name>`).
    pub fn network(&self, name: &str) -> Value {
        inspect(&["network", "inspect", &format!("{}_{name}", self.project)])
    }

    /// `docker volume inspect` of the project's volume `name` (`<project>_<name>`).
    pub fn volume(&self, name: &str) -> Value {
        inspect(&["volume", "inspect", &format!("{}_{name}", self.project)])
    }
}

/// `docker-compose -p <project>-dc -f FILE up -d`, taken down (`down -v --remove-orphans`) when
/// dropped, also when the test fails.
pub struct ComposeUp<'a> {
    project: &'a Project,
    file: String,
    pub side: Side,
}

impl<'a> ComposeUp<'a> {
    /// Brings `file` up with docker-compose; panics with its output when that fails.
    pub fn start(project: &'a Project, file: &str) -> ComposeUp<'a> {
        let up = ComposeUp {
            project,
            file: file.to_string(),
            side: Side {
                tool: Tool::Compose,
                project: format!("{}-dc", project.name),
            },
        };
        let output = up.run(&["up", "-d", "--no-build"]);
        assert!(
            output.status.success(),
            "docker-compose up failed for {file}:\n--- stdout\n{}\n--- stderr\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        up
    }

    /// Runs `docker-compose -p P -f FILE ARGS` in the project folder.
    pub fn run(&self, args: &[&str]) -> Output {
        require_docker_compose();
        Command::new("docker-compose")
            .args(["-p", &self.side.project, "-f", &self.file])
            .args(args)
            .current_dir(self.project.dir.path())
            .env_remove("COMPOSE_FILE")
            .env_remove("COMPOSE_PROJECT_NAME")
            .env_remove("COMPOSE_PROFILES")
            .stdin(Stdio::null())
            .output()
            .expect("run docker-compose")
    }
}

impl Drop for ComposeUp<'_> {
    fn drop(&mut self) {
        let _ = self.run(&["down", "-v", "--remove-orphans", "-t", "0"]);
    }
}

/// Panics (never skips) when the machine has no `docker-compose`.
pub fn require_docker_compose() {
    match Command::new("docker-compose").arg("version").output() {
        Ok(output) if output.status.success() => {}
        Ok(output) => panic!(
            "parity tests need docker-compose; `docker-compose version` said: {}",
            String::from_utf8_lossy(&output.stderr)
        ),
        Err(error) => panic!(
            "parity tests need docker-compose (apt-get install docker-compose; .ci/run does this): {error}"
        ),
    }
}

/// `sandbox -f FILE -p <project> up -d [--wait]`; panics with its output on failure. The project's
/// own drop takes it down.
pub fn sandbox_up(project: &Project, file: &str, up: Up) -> Side {
    let mut args = vec!["-f", file, "-p", &project.name, "up", "-d"];
    if up == Up::Wait {
        args.push("--wait");
    }
    project.run(&args).success();
    Side {
        tool: Tool::Sandbox,
        project: project.name.clone(),
    }
}

/// Brings `file` up with docker-compose, calls `observe` on it, takes it down; then the same with
/// sandbox (left running until `project` drops). Returns (compose's, sandbox's) observations.
pub fn observe<T>(
    project: &Project,
    file: &str,
    up: Up,
    mut observe: impl FnMut(&Side) -> T,
) -> (T, T) {
    let compose = {
        let compose = ComposeUp::start(project, file);
        observe(&compose.side)
    };
    let sandbox = observe(&sandbox_up(project, file, up));
    (compose, sandbox)
}

/// The `docker inspect` of `service`'s first container under each tool: (compose, sandbox).
pub fn containers(project: &Project, file: &str, up: Up, service: &str) -> (Value, Value) {
    observe(project, file, up, |side| side.container(service))
}

/// How one field is compared.
#[derive(Debug, Clone, Copy)]
pub enum Check<'a> {
    /// Both values are equal (a missing field and `null` are the same).
    Equal(&'a str),
    /// Every item of compose's list (or entry of its map) is in sandbox's: for fields where
    /// sandbox adds its own entries (environment, extra hosts, labels).
    Subset(&'a str),
    /// Equal once both lists are sorted (the engine or the tools may reorder).
    Unordered(&'a str),
}

/// Compares `compose` and `sandbox` on `checks`; every difference, one per line.
pub fn differences(compose: &Value, sandbox: &Value, checks: &[Check<'_>]) -> Vec<String> {
    let mut differences = Vec::new();
    for check in checks {
        let (pointer, same) = match *check {
            Check::Equal(pointer) => (
                pointer,
                equal(field(compose, pointer), field(sandbox, pointer)),
            ),
            Check::Subset(pointer) => (
                pointer,
                subset(field(compose, pointer), field(sandbox, pointer)),
            ),
            Check::Unordered(pointer) => (
                pointer,
                sorted(field(compose, pointer)) == sorted(field(sandbox, pointer)),
            ),
        };
        if !same {
            differences.push(format!(
                "{check:?}\n    docker-compose: {}\n    sandbox:        {}",
                field(compose, pointer),
                field(sandbox, pointer)
            ));
        }
    }
    differences
}

/// Panics listing every difference between the two inspections of `what`.
pub fn assert_same(what: &str, compose: &Value, sandbox: &Value, checks: &[Check<'_>]) {
    let differences = differences(compose, sandbox, checks);
    assert!(
        differences.is_empty(),
        "{what}: sandbox and docker-compose disagree on {} field(s):\n  {}",
        differences.len(),
        differences.join("\n  ")
    );
}

fn field<'v>(value: &'v Value, pointer: &str) -> &'v Value {
    value.pointer(pointer).unwrap_or(&Value::Null)
}

/// Missing, `null`, `[]` and `{}` are one thing: the engine reports "not set" all these ways.
fn empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Array(items) => items.is_empty(),
        Value::Object(map) => map.is_empty(),
        _ => false,
    }
}

fn equal(left: &Value, right: &Value) -> bool {
    left == right || (empty(left) && empty(right))
}

fn subset(compose: &Value, sandbox: &Value) -> bool {
    match (compose, sandbox) {
        (Value::Array(items), Value::Array(others)) => {
            items.iter().all(|item| others.contains(item))
        }
        (Value::Object(map), Value::Object(others)) => map
            .iter()
            .all(|(key, value)| others.get(key) == Some(value)),
        _ => equal(compose, sandbox),
    }
}

fn sorted(value: &Value) -> Value {
    match value {
        Value::Array(items) => {
            let mut items = items.clone();
            items.sort_by_key(Value::to_string);
            Value::Array(items)
        }
        other if empty(other) => Value::Null,
        other => other.clone(),
    }
}

fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .output()
        .expect("run the docker CLI")
}

/// The one object `docker ... inspect` prints.
fn inspect(args: &[&str]) -> Value {
    let output = docker(args);
    assert!(
        output.status.success(),
        "docker {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    let mut value: Value = serde_json::from_slice(&output.stdout).expect("inspect prints JSON");
    value
        .as_array_mut()
        .and_then(|items| (!items.is_empty()).then(|| items.remove(0)))
        .unwrap_or_else(|| panic!("docker {} printed no object", args.join(" ")))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{differences, Check};

    #[test]
    fn every_difference_is_reported_with_both_values() {
        let compose =
            json!({"HostConfig": {"CapAdd": ["NET_ADMIN"], "Privileged": true, "Env": ["A=1"]}});
        let sandbox =
            json!({"HostConfig": {"CapAdd": null, "Privileged": false, "Env": ["B=2", "A=1"]}});
        let found = differences(
            &compose,
            &sandbox,
            &[
                Check::Equal("/HostConfig/CapAdd"),
                Check::Equal("/HostConfig/Privileged"),
                Check::Subset("/HostConfig/Env"),
                Check::Equal("/HostConfig/Missing"),
            ],
        );
        assert_eq!(found.len(), 2, "{found:#?}");
        assert!(found[0].contains("[\"NET_ADMIN\"]") && found[0].contains("null"));
        assert!(found[1].contains("Privileged") && found[1].contains("false"));
    }
}

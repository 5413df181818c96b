//! The service keys that become the container's own configuration and host configuration
//! (`cap_add`, `read_only`, `ulimits`, `stop_signal`, limits, DNS, ...): sandbox sends them to the
//! engine with the effect docker-compose gives them.
//!
//! docker-compose 1.29 is too old for some keys, which are checked against the values compose
//! documents instead: `deploy.resources.limits.pids` (its schema refuses it), `mac_address` (sandbox
//! needs Engine API 1.44 for it, and says so), and CDI `devices`. It resolves `ipc: service:NAME`
//! to a container id where sandbox names the container; both are compared as the container they
//! point at.

use std::process::Command;

use serde_json::{json, Value};

use super::parity::{
    assert_same, busybox_image, observe, sandbox_up, write_compose, Check, Side, Up,
};
use crate::util::Project;

/// Every key docker-compose 1.29 takes, on two services (one names its container).
fn all_keys(project: &Project, image: &str) -> String {
    let name = format!("{}-app", project.name);
    format!(
        r#"services:
  app:
    image: {image}
    command: ["sleep", "600"]
    container_name: {name}
    hostname: app
    domainname: example.test
    cap_add: [NET_ADMIN, SYS_TIME]
    cap_drop: [MKNOD]
    privileged: false
    read_only: true
    security_opt: ["no-new-privileges:true"]
    group_add: [2000]
    init: true
    ipc: shareable
    shm_size: 64m
    ulimits:
      nproc: 512
      nofile: {{soft: 1024, hard: 4096}}
    sysctls:
      net.core.somaxconn: 1024
    stop_signal: SIGINT
    stop_grace_period: 7s
    tty: true
    stdin_open: true
    logging:
      driver: json-file
      options:
        max-size: 10m
        max-file: "3"
    platform: linux/amd64
    runtime: runc
    devices: ["/dev/null:/dev/sink:rw"]
    mem_limit: 64m
    memswap_limit: 128m
    mem_reservation: 32m
    cpus: 0.5
    cpu_shares: 512
    cpuset: "0"
    oom_score_adj: 100
    oom_kill_disable: true
    pids_limit: 100
    extra_hosts: ["db.local:10.0.0.2", "v6.local:::1"]
    dns: 8.8.8.8
    dns_search: [example.test]
    dns_opt: ["ndots:2"]
    tmpfs: ["/run:size=1m"]
  worker:
    image: {image}
    command: ["sleep", "600"]
    depends_on: [app]
    pid: host
    ipc: service:app
    extra_hosts: {{cache.local: 10.0.0.3}}
    sysctls: [net.core.somaxconn=512]
    tmpfs: /cache
    stop_grace_period: 1m
    deploy:
      resources:
        limits: {{cpus: "0.25", memory: 48m}}
        reservations: {{memory: 16m}}
      restart_policy: {{condition: on-failure, max_attempts: 3}}
"#
    )
}

const APP_FIELDS: &[Check<'static>] = &[
    Check::Equal("/Name"),
    Check::Equal("/Config/Hostname"),
    Check::Equal("/Config/Domainname"),
    Check::Equal("/Config/Tty"),
    Check::Equal("/Config/OpenStdin"),
    Check::Equal("/Config/StopSignal"),
    Check::Equal("/Config/StopTimeout"),
    Check::Equal("/HostConfig/CapAdd"),
    Check::Equal("/HostConfig/CapDrop"),
    Check::Equal("/HostConfig/Privileged"),
    Check::Equal("/HostConfig/ReadonlyRootfs"),
    Check::Equal("/HostConfig/SecurityOpt"),
    Check::Equal("/HostConfig/GroupAdd"),
    Check::Equal("/HostConfig/Init"),
    Check::Equal("/HostConfig/IpcMode"),
    Check::Equal("/HostConfig/ShmSize"),
    Check::Unordered("/HostConfig/Ulimits"),
    Check::Equal("/HostConfig/Sysctls"),
    Check::Equal("/HostConfig/LogConfig"),
    Check::Equal("/HostConfig/Runtime"),
    Check::Equal("/HostConfig/Devices"),
    Check::Equal("/HostConfig/Memory"),
    Check::Equal("/HostConfig/MemorySwap"),
    Check::Equal("/HostConfig/MemoryReservation"),
    Check::Equal("/HostConfig/NanoCpus"),
    Check::Equal("/HostConfig/CpuShares"),
    Check::Equal("/HostConfig/CpusetCpus"),
    Check::Equal("/HostConfig/OomScoreAdj"),
    Check::Equal("/HostConfig/OomKillDisable"),
    Check::Equal("/HostConfig/PidsLimit"),
    Check::Subset("/HostConfig/ExtraHosts"),
    Check::Equal("/HostConfig/Dns"),
    Check::Equal("/HostConfig/DnsSearch"),
    Check::Equal("/HostConfig/DnsOptions"),
    Check::Equal("/HostConfig/Tmpfs"),
    Check::Equal("/Platform"),
    Check::Equal("/State/Running"),
];

const WORKER_FIELDS: &[Check<'static>] = &[
    Check::Equal("/HostConfig/PidMode"),
    Check::Equal("/HostConfig/IpcMode"),
    Check::Subset("/HostConfig/ExtraHosts"),
    Check::Equal("/HostConfig/Sysctls"),
    Check::Equal("/HostConfig/Tmpfs"),
    Check::Equal("/HostConfig/NanoCpus"),
    Check::Equal("/HostConfig/Memory"),
    Check::Equal("/HostConfig/MemoryReservation"),
    Check::Equal("/HostConfig/RestartPolicy"),
    Check::Equal("/Config/StopTimeout"),
    Check::Equal("/State/Running"),
];

/// Both services' inspections, with `container:<name or id>` modes made into the service that
/// container runs (the tools name and number containers differently).
fn inspect_both(side: &Side) -> (Value, Value) {
    let mut worker = side.container("worker");
    for pointer in ["/HostConfig/IpcMode", "/HostConfig/PidMode"] {
        let resolved = worker
            .pointer(pointer)
            .and_then(Value::as_str)
            .and_then(|mode| mode.strip_prefix("container:"))
            .map(|target| format!("service:{}", service_of(target)));
        if let (Some(resolved), Some(slot)) = (resolved, worker.pointer_mut(pointer)) {
            *slot = Value::String(resolved);
        }
    }
    (side.container("app"), worker)
}

/// The service label (compose's or sandbox's) of a container.
fn service_of(name_or_id: &str) -> String {
    let format = r#"{{index .Config.Labels "com.docker.compose.service"}}{{index .Config.Labels "dev.sandbox.service"}}"#;
    let output = Command::new("docker")
        .args(["inspect", "--format", format, name_or_id])
        .output()
        .expect("docker inspect");
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

#[test]
fn compose_container_keys_match_docker_compose() {
    let project = Project::new("container-keys");
    let image = busybox_image(&project);
    let file = write_compose(&project, &all_keys(&project, &image));
    let ((compose_app, compose_worker), (sandbox_app, sandbox_worker)) =
        observe(&project, &file, Up::Detached, inspect_both);

    // The checks compare something: docker-compose really set what the file asks for.
    assert_eq!(
        compose_app["HostConfig"]["CapAdd"],
        json!(["NET_ADMIN", "SYS_TIME"])
    );
    assert_eq!(
        compose_worker["HostConfig"]["RestartPolicy"]["Name"],
        "on-failure"
    );
    assert_eq!(compose_worker["HostConfig"]["IpcMode"], "service:app");
    assert_same("app", &compose_app, &sandbox_app, APP_FIELDS);
    assert_same("worker", &compose_worker, &sandbox_worker, WORKER_FIELDS);
}

#[test]
fn compose_container_keys_docker_compose_is_too_old_for() {
    let project = Project::new("container-new-keys");
    let image = busybox_image(&project);
    // docker-compose 1.29's schema refuses `limits.pids`; compose v2 sets PidsLimit from it.
    let file = write_compose(
        &project,
        &format!(
            r#"services:
  app:
    image: {image}
    command: ["sleep", "600"]
    pids_limit: 10
    mem_limit: 1g
    deploy:
      resources:
        limits: {{pids: 42, memory: 100m}}
      restart_policy: {{condition: any}}
"#
        ),
    );
    let app = sandbox_up(&project, &file, Up::Detached).container("app");
    assert_eq!(
        app["HostConfig"]["PidsLimit"], 42,
        "deploy wins over pids_limit"
    );
    assert_eq!(
        app["HostConfig"]["Memory"],
        100 << 20,
        "deploy wins over mem_limit"
    );
    assert_eq!(app["HostConfig"]["RestartPolicy"]["Name"], "always");
}

#[test]
fn compose_stop_signal_and_grace_period_are_what_down_uses() {
    let project = Project::new("container-stop");
    let image = busybox_image(&project);
    // `sh` as PID 1 ignores SIGTERM but its trap answers SIGUSR1 at once: with `stop_signal`
    // honoured, `down` takes well under the 20s grace period it would otherwise wait out.
    let file = write_compose(
        &project,
        &format!(
            r#"services:
  app:
    image: {image}
    command: ["sh", "-c", "trap 'exit 0' USR1; while true; do sleep 0.1; done"]
    stop_signal: SIGUSR1
    stop_grace_period: 20s
"#
        ),
    );
    let app = sandbox_up(&project, &file, Up::Detached).container("app");
    assert_eq!(app["Config"]["StopSignal"], "SIGUSR1");
    assert_eq!(app["Config"]["StopTimeout"], 20);
    let started = std::time::Instant::now();
    project
        .run(&["-f", &file, "-p", &project.name, "down"])
        .success();
    let took = started.elapsed();
    assert!(
        took < std::time::Duration::from_secs(10),
        "down took {took:?}: the stop signal was not the service's"
    );
}

#[test]
fn compose_container_name_with_replicas_is_refused_before_anything_runs() {
    let project = Project::new("container-name-replicas");
    let file = write_compose(
        &project,
        "services:\n  web:\n    image: busybox\n    container_name: web\n    deploy:\n      replicas: 2\n",
    );
    let run = project.run(&["-f", &file, "-p", &project.name, "up", "-d"]);
    run.expect_code(3);
    assert!(
        run.stderr
            .contains("names one container, but service `web` has 2 replicas"),
        "{}",
        run.stderr
    );
    assert!(project.leftovers().is_empty(), "{:?}", project.leftovers());
}

#[test]
fn compose_container_name_taken_by_another_container_is_an_error_and_left_alone() {
    let project = Project::new("container-name-taken");
    let image = busybox_image(&project);
    let name = format!("{}-bystander", project.name);
    let bystander = Command::new("docker")
        .args(["run", "-d", "--name", &name, &image, "sleep", "600"])
        .output()
        .expect("docker run");
    assert!(bystander.status.success(), "{bystander:?}");
    let _remove = RemoveOnDrop(name.clone());
    let file = write_compose(
        &project,
        &format!("services:\n  web:\n    image: {image}\n    command: [\"sleep\", \"600\"]\n    container_name: {name}\n"),
    );
    let run = project.run(&["-f", &file, "-p", &project.name, "up", "-d"]);
    assert_ne!(run.code, 0, "{}", run.stdout);
    assert!(
        run.stderr
            .contains("is taken by a container that is not this project's"),
        "{}",
        run.stderr
    );
    let state = Command::new("docker")
        .args(["inspect", "--format", "{{.State.Running}}", &name])
        .output()
        .expect("docker inspect");
    assert_eq!(String::from_utf8_lossy(&state.stdout).trim(), "true");
}

/// Removes a container made outside any project.
struct RemoveOnDrop(String);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", &self.0]).output();
    }
}

#[test]
fn compose_mac_address_is_set_or_refused_with_the_engine_version() {
    let project = Project::new("container-mac");
    let image = busybox_image(&project);
    let file = write_compose(
        &project,
        &format!("services:\n  web:\n    image: {image}\n    command: [\"sleep\", \"600\"]\n    mac_address: 02:42:ac:11:00:42\n"),
    );
    let version = Command::new("docker")
        .args(["version", "--format", "{{.Server.APIVersion}}"])
        .output()
        .expect("docker version");
    let version = String::from_utf8_lossy(&version.stdout).trim().to_string();
    let (major, minor) = version.split_once('.').expect("API version like 1.41");
    let endpoint_mac = (
        major.parse::<u32>().unwrap_or(0),
        minor.parse::<u32>().unwrap_or(0),
    ) >= (1, 44);
    let run = project.run(&["-f", &file, "-p", &project.name, "up", "-d"]);
    if endpoint_mac {
        run.success();
        let web = Side {
            tool: super::parity::Tool::Sandbox,
            project: project.name.clone(),
        }
        .container("web");
        let networks = web["NetworkSettings"]["Networks"]
            .as_object()
            .expect("networks");
        assert!(
            networks
                .values()
                .any(|network| network["MacAddress"] == "02:42:ac:11:00:42"),
            "{networks:?}"
        );
    } else {
        assert_eq!(run.code, 5, "{}", run.stderr);
        assert!(
            run.stderr.contains("needs Docker Engine API 1.44 or newer"),
            "{}",
            run.stderr
        );
    }
}

/// The cgroup keys docker-compose 1.29 takes. Left out: `cpu_rt_*` (the engine refuses them unless
/// the kernel has real-time group scheduling) and `storage_opt` (only some storage drivers take a
/// size).
fn cgroup_keys(image: &str) -> String {
    format!(
        r#"services:
  app:
    image: {image}
    command: ["sleep", "600"]
    cgroup_parent: /sandbox-parity
    cpu_period: 100000
    cpu_quota: 50000
    mem_swappiness: 10
    blkio_config:
      weight: 300
    device_cgroup_rules: ["c 1:3 mr"]
    userns_mode: host
"#
    )
}

#[test]
fn compose_cgroup_keys_match_docker_compose() {
    let project = Project::new("container-cgroup-keys");
    let image = busybox_image(&project);
    let file = write_compose(&project, &cgroup_keys(&image));
    let (compose_app, sandbox_app) =
        observe(&project, &file, Up::Detached, |side| side.container("app"));
    assert_eq!(compose_app["HostConfig"]["CgroupParent"], "/sandbox-parity");
    assert_eq!(compose_app["HostConfig"]["CpuQuota"], 50000);
    assert_same(
        "app",
        &compose_app,
        &sandbox_app,
        &[
            Check::Equal("/HostConfig/CgroupParent"),
            Check::Equal("/HostConfig/CpuPeriod"),
            Check::Equal("/HostConfig/CpuQuota"),
            Check::Equal("/HostConfig/MemorySwappiness"),
            Check::Equal("/HostConfig/BlkioWeight"),
            Check::Equal("/HostConfig/DeviceCgroupRules"),
            Check::Equal("/HostConfig/UsernsMode"),
            Check::Equal("/State/Running"),
        ],
    );
}

#[test]
fn compose_namespace_keys_docker_compose_is_too_old_for() {
    let project = Project::new("container-namespaces");
    let image = busybox_image(&project);
    // docker-compose 1.29 refuses `uts` and `cgroup`; compose v2 sets UTSMode and CgroupnsMode.
    let file = write_compose(
        &project,
        &format!(
            r#"services:
  app:
    image: {image}
    command: ["sleep", "600"]
    uts: host
    cgroup: host
    cpu_period: 50ms
"#
        ),
    );
    let app = sandbox_up(&project, &file, Up::Detached).container("app");
    assert_eq!(app["HostConfig"]["UTSMode"], "host");
    assert_eq!(app["HostConfig"]["CgroupnsMode"], "host");
    assert_eq!(app["HostConfig"]["CpuPeriod"], 50000);
    assert_eq!(app["State"]["Running"], true);
}

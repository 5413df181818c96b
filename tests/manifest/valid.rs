//! Valid manifests and what they resolve to.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use sandbox::manifest::{
    load, to_json, to_yaml, Build, DependencyCondition, HealthProbe, Healthcheck, LoadOptions,
    PortPublish, RestartPolicy, VolumeMount, VolumeSpec,
};

use crate::util::{environment, fixtures, load_valid, options};

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect()
}

fn port(host_ip: &str, host_port: Option<u16>, container_port: u16, protocol: &str) -> PortPublish {
    PortPublish::new(host_ip, host_port, container_port, protocol)
}

#[test]
fn the_mesh_is_on_unless_switched_off() {
    let minimal = load_valid("minimal.yaml");
    assert!(minimal.mesh, "on by default");
    assert!(minimal.services["web"].mesh);
    assert!(
        !to_json(&minimal).contains("mesh"),
        "a default is not written"
    );
    let manifest = load_valid("mesh.yaml");
    assert!(!manifest.mesh);
    assert!(manifest.services["web"].mesh, "the service's own setting");
    assert!(!manifest.services["db"].mesh);
    assert!(manifest.warnings.is_empty(), "{:?}", manifest.warnings);
}

#[test]
fn minimal_manifest_gets_defaults() {
    let manifest = load_valid("minimal.yaml");
    assert_eq!(manifest.project, "valid", "the folder's name");
    assert_eq!(manifest.file, fixtures("valid").join("minimal.yaml"));
    assert_eq!(manifest.directory, fixtures("valid"));
    let web = &manifest.services["web"];
    assert_eq!(web.image, "nginx:1.27");
    assert_eq!(web.build, None);
    assert_eq!(web.replicas, 1);
    assert_eq!(web.restart, RestartPolicy::No);
    assert_eq!(web.healthcheck, None);
    assert!(web.environment.is_empty() && web.ports.is_empty() && web.volumes.is_empty());
    assert!(manifest.volumes.is_empty());
}

#[test]
fn project_flag_overrides_name() {
    let mut options = options(&fixtures("valid"), "full.yaml");
    options.project = Some("Other_Shop".into());
    assert_eq!(load(&options).expect("loads").project, "other_shop");
    assert_eq!(
        load_valid("full.yaml").project,
        "shopdemo",
        "`Shop Demo` normalised"
    );
}

/// A build with only a context: the other fields at their defaults.
fn plain_build() -> Build {
    Build {
        context: PathBuf::new(),
        dockerfile: "Dockerfile".into(),
        dockerfile_inline: None,
        args: BTreeMap::new(),
        target: None,
        labels: BTreeMap::new(),
        cache_from: Vec::new(),
        network: None,
        shm_size: None,
        extra_hosts: Vec::new(),
        no_cache: false,
        pull: false,
    }
}

#[test]
fn build_only_service_gets_the_compose_image_name() {
    let manifest = load_valid("full.yaml");
    let user = &manifest.services["user"];
    assert_eq!(user.image, "shopdemo-user:latest");
    assert_eq!(
        user.build,
        Some(Build {
            context: fixtures("valid").join("context"),
            dockerfile: "Dockerfile".into(),
            args: BTreeMap::new(),
            target: None,
            ..plain_build()
        })
    );
}

#[test]
fn build_map_with_args_and_interpolated_image() {
    let manifest = load_valid("full.yaml");
    let item = &manifest.services["item"];
    assert_eq!(item.image, "registry.example/item:1.2.3");
    assert_eq!(
        item.build,
        Some(Build {
            context: fixtures("valid").join("services/item"),
            dockerfile: "Dockerfile.dev".into(),
            args: map(&[("VERSION", "1.2.3")]),
            target: Some("runtime".into()),
            ..plain_build()
        })
    );
    assert_eq!(
        item.entrypoint,
        Some(vec!["/bin/item".into(), "--port".into(), "8080".into()])
    );
    assert_eq!(
        item.labels,
        map(&[("team", "catalogue"), ("tier", "")]),
        "a label without `=` is empty"
    );
    assert_eq!(item.replicas, 0, "`scale` is an alias");
    assert_eq!(
        item.restart,
        RestartPolicy::OnFailure {
            max_retries: Some(5)
        }
    );
}

#[test]
fn environment_layers_env_file_then_environment() {
    let manifest = load_valid("full.yaml");
    let user = &manifest.services["user"];
    assert_eq!(
        user.environment,
        map(&[
            ("DEBUG", "false"),
            ("FROM_PROCESS", "process-value"),
            ("LOG_LEVEL", "debug"),
            ("MODE", "from-file"),
            ("RETRIES", "3"),
            ("SERVICE_NAME", "user"),
            ("SHARED", "from-environment"),
        ])
    );
    let db = &manifest.services["db"];
    assert_eq!(
        db.environment,
        map(&[
            ("FROM_PROCESS", "process-value"),
            ("POSTGRES_PASSWORD", "${not interpolated}")
        ])
    );
}

#[test]
fn process_environment_overrides_dotenv() {
    let mut options = options(&fixtures("valid"), "full.yaml");
    options.environment.insert("TAG".into(), "9.9".into());
    let manifest = load(&options).expect("loads");
    assert_eq!(manifest.services["item"].image, "registry.example/item:9.9");
}

#[test]
fn command_strings_split_like_a_shell() {
    let manifest = load_valid("full.yaml");
    assert_eq!(
        manifest.services["user"].command,
        Some(vec![
            "serve".into(),
            "--name".into(),
            "user service".into(),
            "--verbose".into()
        ])
    );
    assert_eq!(
        manifest.services["migrate"].command,
        Some(vec!["psql".into(), "-f".into(), "/migrations.sql".into()])
    );
}

#[test]
fn ports_in_every_form() {
    let manifest = load_valid("full.yaml");
    assert_eq!(
        manifest.services["user"].ports,
        vec![
            port("127.0.0.1", None, 8080, "tcp"),
            port("127.0.0.1", Some(9000), 8080, "tcp"),
            port("0.0.0.0", Some(9001), 8081, "tcp"),
            port("127.0.0.1", None, 8082, "tcp"),
            port("127.0.0.1", Some(9002), 53, "udp"),
            port("0.0.0.0", Some(9003), 8083, "tcp"),
        ]
    );
    assert_eq!(manifest.services["user"].port, Some(8080));
}

#[test]
fn volumes_in_every_form() {
    let manifest = load_valid("full.yaml");
    let directory = fixtures("valid");
    let bind = |source: PathBuf, target: &str, read_only: bool| VolumeMount::Bind {
        source,
        target: target.into(),
        read_only,
        create_host_path: true,
        propagation: None,
        selinux: None,
    };
    assert_eq!(
        manifest.services["user"].volumes,
        vec![
            bind(directory.join("data"), "/data", false),
            bind(directory.join("config"), "/etc/app", true),
            bind(PathBuf::from("/home/tester/cache"), "/cache", false),
            bind(PathBuf::from("/var/run/app"), "/run/app", false),
            VolumeMount::Named {
                name: "pgdata".into(),
                target: "/var/lib/data".into(),
                read_only: false,
                nocopy: false,
                subpath: None,
                selinux: None,
            },
            VolumeMount::Anonymous {
                target: "/scratch".into(),
                read_only: false,
                nocopy: false,
            },
            bind(directory.join("logs"), "/logs", true),
            VolumeMount::Named {
                name: "pgdata".into(),
                target: "/backup".into(),
                read_only: false,
                nocopy: false,
                subpath: None,
                selinux: None,
            },
        ]
    );
    assert_eq!(
        manifest.volumes,
        BTreeMap::from([
            ("pgdata".to_string(), VolumeSpec::default()),
            (
                "shared".to_string(),
                VolumeSpec {
                    external: true,
                    labels: map(&[("backup", "daily")]),
                    ..VolumeSpec::default()
                }
            ),
        ])
    );
}

#[test]
fn dependencies_and_conditions() {
    let manifest = load_valid("full.yaml");
    assert_eq!(
        manifest.services["user"].depends_on,
        BTreeMap::from([
            ("db".to_string(), DependencyCondition::Started),
            ("item".to_string(), DependencyCondition::Healthy),
            ("migrate".to_string(), DependencyCondition::Completed),
        ])
    );
    let order: Vec<&str> = manifest
        .start_order()
        .iter()
        .map(|service| service.name.as_str())
        .collect();
    let position = |name: &str| {
        order
            .iter()
            .position(|entry| *entry == name)
            .expect("in order")
    };
    assert!(position("user") > position("item") && position("user") > position("db"));
}

#[test]
fn healthchecks_in_every_form() {
    let manifest = load_valid("full.yaml");
    assert_eq!(
        manifest.services["user"].healthcheck,
        Some(Healthcheck {
            probe: HealthProbe::Http {
                path: "/health".into()
            },
            interval: Duration::from_secs(90),
            timeout: Duration::from_millis(1500),
            retries: 10,
            start_period: Duration::from_millis(250),
            start_interval: None,
            from_image: Vec::new(),
        })
    );
    let probe = |name: &str| {
        manifest.services[name]
            .healthcheck
            .as_ref()
            .map(|check| check.probe.clone())
    };
    assert_eq!(probe("item"), Some(HealthProbe::Tcp));
    let shell = |script: &str| {
        Some(HealthProbe::Command(vec![
            "sh".into(),
            "-c".into(),
            script.into(),
        ]))
    };
    assert_eq!(probe("db"), shell("pg_isready -U postgres"));
    assert_eq!(probe("worker"), shell("test -f /tmp/ready"));
    assert_eq!(probe("migrate"), None, "`test: [NONE]`");
    assert_eq!(probe("cron"), None, "`disable: true`");
    let defaults = manifest.services["item"]
        .healthcheck
        .clone()
        .expect("a check");
    assert_eq!(
        (
            defaults.interval,
            defaults.timeout,
            defaults.retries,
            defaults.start_period
        ),
        (
            Duration::from_secs(5),
            Duration::from_secs(2),
            3,
            Duration::ZERO
        )
    );
}

#[test]
fn restart_replicas_labels_and_the_rest() {
    let manifest = load_valid("full.yaml");
    let user = &manifest.services["user"];
    assert_eq!(
        user.restart,
        RestartPolicy::UnlessStopped,
        "merged from x-defaults"
    );
    assert_eq!(user.labels, map(&[("team", "shop")]));
    assert_eq!(user.working_dir.as_deref(), Some("/app"));
    assert_eq!(user.user.as_deref(), Some("1000"));
    assert_eq!(manifest.services["db"].restart, RestartPolicy::No);
    assert_eq!(manifest.services["db"].replicas, 1);
    assert_eq!(
        manifest.services["migrate"].restart,
        RestartPolicy::No,
        "`false` means `no`"
    );
    assert_eq!(manifest.services["worker"].restart, RestartPolicy::Always);
    assert_eq!(manifest.services["worker"].replicas, 2);
    assert_eq!(
        manifest.services["cron"].restart,
        RestartPolicy::OnFailure { max_retries: None }
    );
}

#[test]
fn grpc_healthchecks_name_the_service_asked_about() {
    let manifest = load_valid("grpc_health.yaml");
    let probe = |name: &str| {
        manifest.services[name]
            .healthcheck
            .as_ref()
            .map(|check| check.probe.clone())
    };
    assert_eq!(
        probe("echo"),
        Some(HealthProbe::Grpc {
            service: String::new()
        })
    );
    assert_eq!(
        probe("named"),
        Some(HealthProbe::Grpc {
            service: "demo.Echo".into()
        })
    );
    let json: serde_json::Value = serde_json::from_str(&to_json(&manifest)).expect("JSON");
    assert_eq!(
        json["services"]["echo"]["healthcheck"]["probe"],
        serde_json::json!({"grpc": {"service": ""}})
    );
    assert_eq!(json["services"]["echo"]["healthcheck"]["interval"], "1s");
}

/// `sandbox config` output is stable: locked as a snapshot (absolute paths replaced by `[FIXTURES]`).
#[test]
fn yaml_round_trip_is_stable() {
    let manifest = load_valid("full.yaml");
    let directory = fixtures("valid").display().to_string();
    let yaml = to_yaml(&manifest).replace(&directory, "[FIXTURES]");
    insta::assert_snapshot!("full_yaml", yaml);
    assert_eq!(
        to_yaml(&load_valid("full.yaml")),
        to_yaml(&manifest),
        "same input, same text"
    );
}

#[test]
fn json_output_is_pretty_json() {
    let manifest = load_valid("minimal.yaml");
    let json = to_json(&manifest);
    let value: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
    assert_eq!(value["project"], "valid");
    assert_eq!(value["services"]["web"]["image"], "nginx:1.27");
    insta::assert_snapshot!("minimal_json", json);
}

#[test]
fn default_file_names_are_found() {
    let directory = tempfile::tempdir().expect("temp dir");
    let folder = directory.path().join("My Project");
    std::fs::create_dir(&folder).expect("folder");
    std::fs::write(
        folder.join("sandbox.yml"),
        "services:\n  web:\n    image: nginx\n",
    )
    .expect("write");
    let options = LoadOptions {
        project: None,
        working_dir: folder.clone(),
        environment: environment(),
        ..LoadOptions::default()
    };
    let manifest = load(&options).expect("finds sandbox.yml");
    assert_eq!(manifest.file, folder.join("sandbox.yml"));
    assert_eq!(manifest.project, "myproject");
    std::fs::write(
        folder.join("sandbox.yaml"),
        "services:\n  api:\n    image: nginx\n",
    )
    .expect("write");
    assert!(
        load(&options)
            .expect("finds sandbox.yaml")
            .services
            .contains_key("api"),
        "sandbox.yaml first"
    );
}

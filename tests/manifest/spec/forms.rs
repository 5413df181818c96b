//! Forms compose reads alike (YAML 1.1 octal modes, sizes, durations, the string, list and map
//! forms of a key) resolve to the same project.

use super::{load_text, FILES};
use sandbox::manifest::to_json;

/// Pairs of service keys written in two forms compose reads the same way.
const SAME_FORMS: &[(&str, &str)] = &[
    // YAML 1.1 octal, as compose reads it, and decimal.
    (
        "secrets: [{source: token, mode: 0440}]",
        "secrets: [{source: token, mode: 288}]",
    ),
    (
        "secrets: [{source: token, mode: 0440}]",
        "secrets: [{source: token, mode: \"0440\"}]",
    ),
    // A number without a leading 0 is decimal, as yaml.v3 reads it: 1023 is 0o1777.
    (
        "volumes: [{type: tmpfs, target: /c, tmpfs: {mode: 01777}}]",
        "volumes: [{type: tmpfs, target: /c, tmpfs: {mode: \"1777\"}}]",
    ),
    (
        "volumes: [{type: tmpfs, target: /c, tmpfs: {mode: 01777}}]",
        "volumes: [{type: tmpfs, target: /c, tmpfs: {mode: 1023}}]",
    ),
    // Sizes and durations.
    ("shm_size: 64m", "shm_size: 67108864"),
    ("mem_limit: 1g", "mem_limit: 1024M"),
    ("stop_grace_period: 1m30s", "stop_grace_period: 90s"),
    ("cpu_period: 100ms", "cpu_period: 100000"),
    (
        "healthcheck: {test: [\"CMD-SHELL\", \"true\"], interval: 1m}",
        "healthcheck: {test: true, interval: 60s}",
    ),
    // String, list and map forms.
    ("command: echo 'a b'", "command: [echo, a b]"),
    ("environment: {A: \"1\"}", "environment: [A=1]"),
    ("labels: {a.b: c}", "labels: [a.b=c]"),
    (
        "label_file: [app.labels, other.labels]",
        "labels: {com.example.team: web, com.example.tier: front end}",
    ),
    (
        "label_file: app.labels\n    labels: {com.example.team: ops}",
        "labels: {com.example.team: ops}",
    ),
    (
        "sysctls: {net.core.somaxconn: 1024}",
        "sysctls: [net.core.somaxconn=1024]",
    ),
    (
        "extra_hosts: [\"db:10.0.0.2\"]",
        "extra_hosts: {db: 10.0.0.2}",
    ),
    (
        "extra_hosts: [\"db:10.0.0.2\"]",
        "extra_hosts: [\"db=10.0.0.2\"]",
    ),
    ("dns: 1.1.1.1", "dns: [1.1.1.1]"),
    ("tmpfs: /run", "tmpfs: [/run]"),
    ("env_file: app.env", "env_file: [{path: app.env}]"),
    (
        "depends_on: [other]",
        "depends_on: {other: {condition: service_started}}",
    ),
    (
        "ulimits: {nproc: 65535}",
        "ulimits: {nproc: {soft: 65535, hard: 65535}}",
    ),
    (
        "ports: [\"8080:80\"]",
        "ports: [{target: 80, published: \"8080\"}]",
    ),
    ("networks: [front]", "networks: {front: {}}"),
    ("networks: [front]", "networks: {front: null}"),
    ("gpus: all", "gpus: [{count: all}]"),
];

#[test]
fn forms_compose_reads_alike_resolve_alike() {
    let folder = tempfile::tempdir().expect("temporary folder");
    for (path, content) in FILES {
        let path = folder.path().join(path);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("folder");
        std::fs::write(path, content).expect("file");
    }
    let document = |key: &str| {
        format!(
            "services:\n  app:\n    image: busybox:1.36\n    {key}\n  other:\n    image: busybox:1.36\n\
             secrets:\n  token:\n    environment: HOME\nnetworks:\n  front: {{}}\n"
        )
    };
    let mut failures = Vec::new();
    for (one, other) in SAME_FORMS {
        let resolve = |key: &str| load_text(folder.path(), &document(key)).map(|m| to_json(&m));
        match (resolve(one), resolve(other)) {
            (Ok(left), Ok(right)) if left == right => {}
            (Ok(left), Ok(right)) => {
                failures.push(format!("`{one}` and `{other}` differ:\n{left}\n{right}"))
            }
            (left, right) => failures.push(format!(
                "`{one}` or `{other}` does not load:\n{left:?}\n{right:?}"
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n----------\n"));
}

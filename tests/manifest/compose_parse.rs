//! The corpus is made of real compose files: each case that the machine's `docker-compose` (1.29,
//! the Python implementation) understands is accepted by `docker-compose config -q` with the same
//! files, profiles, env files and variables sandbox loads it with. The cases that use what 1.29
//! predates are listed with the reason, and must still be refused by it (so the list stays true).

use std::path::Path;
use std::process::Command;

use crate::compose::{case_options, cases};

/// Cases docker-compose 1.29 refuses, and why (keys or forms newer than 1.29, or YAML that Go's
/// yaml.v3 reads and PyYAML does not).
const TOO_NEW_FOR_1_29: &[(&str, &str)] = &[
    (
        "build_forms",
        "`pull_policy: daily`, `weekly`, `every_<duration>`, `missing`",
    ),
    (
        "container_all",
        "`deploy.resources.limits.pids`, long-form `devices`, a number as `stop_grace_period`, `extra_hosts` with several addresses",
    ),
    (
        "health_forms",
        "`healthcheck.start_interval`, `depends_on.restart`",
    ),
    ("loading_env_file_flag", "long-form `env_file` (`path`, `required`)"),
    ("loading_include", "top-level `include`"),
    ("loading_interpolation", "`${VAR:+alternative}`"),
    ("loading_multiple_files", "the `!reset` merge tag"),
    ("loading_override", "top-level `name`"),
    ("loading_sandbox_includes_compose", "top-level `include` (and `name` in the included file)"),
    (
        "loading_yaml_forms",
        "a tab inside a flow collection, which yaml.v3 accepts and PyYAML does not",
    ),
    ("networks_ipam", "`driver_opts` of a service's network"),
    ("ports_forms", "a range as `published` in the long syntax"),
    ("secrets_configs", "configs from `content` and `environment`"),
    ("secrets_environment", "secrets from `environment`"),
    (
        "spec_engine_extras",
        "`cgroup`, `uts`, `gpus`, `annotations`, durations as CPU periods",
    ),
    (
        "spec_ignored_keys",
        "`develop`, `models`, `provider`, lifecycle hooks and the other keys newer than 1.29",
    ),
    (
        "storage_volumes",
        "`bind.create_host_path`, `tmpfs.mode`, `volume.subpath`",
    ),
];

/// `docker-compose config -q` on one case: `Ok` when accepted, else what it printed.
fn docker_compose_config(case: &Path) -> Result<(), String> {
    let options = case_options(case);
    let mut command = Command::new("docker-compose");
    command
        .current_dir(&options.working_dir)
        .env_clear()
        .envs(&options.environment)
        .env("PATH", std::env::var_os("PATH").unwrap_or_default());
    if let Some(project) = &options.project {
        command.arg("-p").arg(project);
    }
    for file in &options.files {
        command.arg("-f").arg(file);
    }
    for file in &options.env_files {
        command.arg("--env-file").arg(file);
    }
    for profile in &options.profiles {
        command.arg("--profile").arg(profile);
    }
    command.args(["config", "-q"]);
    let output = command.output().unwrap_or_else(|error| {
        panic!("cannot run `docker-compose` ({error}): this test needs docker-compose 1.29 on PATH")
    });
    if output.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

#[test]
fn docker_compose_accepts_the_corpus() {
    let cases = cases();
    // docker-compose starts slowly (a Python interpreter each time): run the cases four at a time.
    let outcomes: Vec<Result<(), String>> = cases
        .chunks(4)
        .flat_map(|chunk| {
            std::thread::scope(|scope| {
                let runs: Vec<_> = chunk
                    .iter()
                    .map(|case| scope.spawn(|| docker_compose_config(case)))
                    .collect();
                runs.into_iter()
                    .map(|run| run.join().expect("docker-compose run"))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut failures = Vec::new();
    for (case, outcome) in cases.iter().zip(outcomes) {
        let name = case
            .file_stem()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let too_new = TOO_NEW_FOR_1_29.iter().find(|(listed, _)| *listed == name);
        match (outcome, too_new) {
            (Ok(()), None) | (Err(_), Some(_)) => {}
            (Err(output), None) => {
                failures.push(format!("docker-compose refuses `{name}`:\n{output}"));
            }
            (Ok(()), Some((_, reason))) => failures.push(format!(
                "`{name}` is listed as too new for docker-compose 1.29 ({reason}), but it is accepted: remove it from the list"
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

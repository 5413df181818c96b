//! One fixture per way a manifest can be wrong, named after what it breaks; each rendered message is
//! locked in a snapshot (`snapshots/main__invalid__<fixture>.snap`).

use std::collections::BTreeSet;

use sandbox::manifest::{load, LoadOptions};

use crate::util::{environment, fixtures, load_invalid, options};

fn check(name: &str) {
    let errors = load_invalid(&format!("{name}.yaml"));
    assert!(!errors.errors.is_empty());
    insta::assert_snapshot!(name, errors.to_string());
}

macro_rules! invalid_fixtures {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                check(stringify!($name));
            }
        )*

        /// Every fixture file has a test above, and every test a fixture.
        #[test]
        fn every_fixture_is_tested() {
            let tested: BTreeSet<String> = [$(stringify!($name)),*].iter().map(|name| format!("{name}.yaml")).collect();
            let files: BTreeSet<String> = std::fs::read_dir(fixtures("invalid"))
                .expect("fixture folder")
                .map(|entry| entry.expect("entry").file_name().to_string_lossy().into_owned())
                .collect();
            assert_eq!(files, tested);
        }
    };
}

invalid_fixtures!(
    mesh_not_a_boolean,
    bad_grpc_health_service,
    bad_max_request_body,
    bad_grpc_policy,
    gateway_workers_out_of_range,
    bad_port_range,
    bad_mount_type,
    tmpfs_options_on_bind,
    unknown_pull_policy,
    healthcheck_test_foo,
    volumes_from_unknown_service,
    extends_cycle,
    extends_unknown_service,
    include_missing_file,
    x_sandbox_misplaced_keys,
    profile_disabled_dependency,
    flow_sequence_unclosed,
    network_unknown,
    network_mode_with_networks,
    network_bad_ipv4_address,
    network_external_with_driver,
    link_unknown_service,
    bad_depends_on_condition,
    bad_duration,
    bad_external,
    bad_http_path,
    bad_interpolation,
    bad_merge,
    bad_port_string,
    bad_restart,
    bad_service_name,
    bad_test,
    bad_traffic_policy,
    build_context_missing,
    conflicting_replicas,
    container_bad_size,
    container_deploy_unknown_key,
    container_name_with_replicas,
    container_ulimits_wrong_type,
    depends_on_cycle,
    duplicate_host_port,
    duplicate_key,
    empty_file,
    empty_services,
    env_file_missing,
    fixed_port_with_replicas,
    healthcheck_without_probe,
    grpc_healthcheck_without_port,
    healthy_without_healthcheck,
    http_healthcheck_without_port,
    missing_required_var,
    missing_services,
    negative_replicas,
    no_image_or_build,
    not_a_map,
    not_utf8,
    port_out_of_range,
    relative_container_path,
    reserved_label,
    route_bad_regex,
    route_unknown_service,
    route_without_target,
    secret_bad_mode,
    secret_environment_unset,
    secret_external_used,
    secret_file_missing,
    secret_read_only_service,
    secret_undeclared,
    secret_unknown_long_key,
    secret_without_source,
    self_dependency,
    several_errors,
    split_weights,
    syntax_error,
    two_probes,
    unclosed_quote_command,
    undeclared_volume,
    unknown_dependency,
    unknown_key,
    unknown_volume_key,
    wildcard_host_port,
    wrong_type_environment,
    wrong_type_ports,
    zero_interval,
);

#[test]
fn several_errors_are_all_reported_in_file_order() {
    let errors = load_invalid("several_errors.yaml");
    assert!(errors.errors.len() >= 6, "{errors}");
    let lines: Vec<_> = errors.errors.iter().map(|error| error.line).collect();
    let mut sorted = lines.clone();
    sorted.sort();
    assert_eq!(lines, sorted);
}

#[test]
fn positions_are_one_based_lines_and_columns() {
    let errors = load_invalid("unknown_key.yaml");
    let error = &errors.errors[0];
    assert_eq!((error.line, error.column), (Some(7), Some(5)));
    assert_eq!(error.field, "services.user.depend_on");
    assert_eq!(error.hint.as_deref(), Some("did you mean `depends_on`?"));
}

#[test]
fn missing_file() {
    let directory = tempfile::tempdir().expect("temp dir");
    let errors = load(&options(directory.path(), "sandbox.yaml")).expect_err("no file");
    insta::assert_snapshot!("missing_file", errors.to_string());
}

#[test]
fn missing_default_file() {
    let directory = tempfile::tempdir().expect("temp dir");
    let options = LoadOptions {
        project: None,
        working_dir: directory.path().to_path_buf(),
        environment: environment(),
        ..LoadOptions::default()
    };
    let errors = load(&options).expect_err("no file");
    assert_eq!(errors.errors.len(), 1);
    assert_eq!(errors.errors[0].line, None);
    assert_eq!(errors.file.to_str(), Some("sandbox.yaml"));
}

#[test]
fn too_large_file() {
    let directory = tempfile::tempdir().expect("temp dir");
    let mut text = String::from("services:\n  web:\n    image: nginx\n");
    while text.len() <= 4 * 1024 * 1024 {
        text.push_str(
            "# padding padding padding padding padding padding padding padding padding\n",
        );
    }
    std::fs::write(directory.path().join("big.yaml"), text).expect("write");
    let errors = load(&options(directory.path(), "big.yaml")).expect_err("too large");
    insta::assert_snapshot!("too_large_file", errors.to_string());
}

#[test]
fn bad_dotenv_line() {
    let directory = tempfile::tempdir().expect("temp dir");
    std::fs::write(directory.path().join(".env"), "A=1\nthis is not a line\n").expect("write");
    std::fs::write(
        directory.path().join("sandbox.yaml"),
        "services:\n  web:\n    image: nginx\n",
    )
    .expect("write");
    let errors = load(&options(directory.path(), "sandbox.yaml")).expect_err("bad .env");
    insta::assert_snapshot!("bad_dotenv_line", errors.to_string());
}

#[test]
fn invalid_project_flag() {
    let mut options = options(&fixtures("valid"), "minimal.yaml");
    options.project = Some("!!!".to_string());
    let errors = load(&options).expect_err("bad -p");
    insta::assert_snapshot!("invalid_project_flag", errors.to_string());
}

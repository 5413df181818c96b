//! Service keys of the Compose Specification that sandbox accepts without effect: each is a
//! warning naming the key and why, never an error.

use super::super::check::{join, Checker, Fields};

/// Service keys accepted with a warning, and why they do nothing here.
pub const IGNORED_KEYS: &[(&str, &str)] = &[
    (
        "develop",
        "it configures `docker compose watch`; sandbox has no watch mode yet",
    ),
    (
        "attach",
        "it chooses whose logs `docker compose up` prints; `sandbox logs` shows every service's",
    ),
    (
        "post_start",
        "lifecycle hooks are not run by sandbox yet; run the command from the entrypoint instead",
    ),
    (
        "pre_stop",
        "lifecycle hooks are not run by sandbox yet; handle the stop signal in the process instead",
    ),
    (
        "models",
        "sandbox does not run AI models (Docker Model Runner) yet",
    ),
    (
        "provider",
        "a provider service is created by a compose plugin, which sandbox does not run",
    ),
    (
        "use_api_socket",
        "sandbox does not hand the engine's API socket to containers; mount `/var/run/docker.sock` in `volumes` instead",
    ),
    (
        "pull_refresh_after",
        "sandbox pulls by `pull_policy` alone and keeps no record of when an image was pulled",
    ),
    (
        "credential_spec",
        "a credential spec configures a managed service account of a Windows container",
    ),
    (
        "isolation",
        "isolation technologies (`process`, `hyperv`) exist only on Windows engines",
    ),
    (
        "cpu_count",
        "the engine applies `cpu_count` to Windows containers only; use `cpus` on Linux",
    ),
    (
        "cpu_percent",
        "the engine applies `cpu_percent` to Windows containers only; use `cpus` on Linux",
    ),
];

/// A warning for each ignored key present in the service map at `field`.
pub fn warn(checker: &mut Checker<'_>, fields: &Fields<'_>, field: &str) {
    for (key, why) in IGNORED_KEYS {
        if let Some(node) = fields.get(key) {
            checker.warning(
                node,
                &join(field, key),
                format!("`{key}` is accepted and has no effect"),
                *why,
            );
        }
    }
}

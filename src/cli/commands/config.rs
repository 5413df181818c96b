//! `sandbox config` and `sandbox validate`.

use serde_yaml_ng::{Mapping, Value as Yaml};

use crate::cli::context;
use crate::cli::GlobalArgs;
use crate::engine::mesh::{self, Verdict};
use crate::manifest::{self, ExportOptions, Manifest};
use crate::output::Printer;

#[derive(Debug, clap::Args)]
pub struct ConfigArgs {
    /// Print only the service names, one a line.
    #[arg(long)]
    pub services: bool,
    /// Print values of secret-looking variables (`*PASSWORD*`, `*SECRET*`, `*TOKEN*`, ...) as they
    /// are instead of `********`.
    #[arg(long)]
    pub show_secrets: bool,
    /// `sandbox`: the resolved manifest as sandbox reads it; `compose`: the resolved project as one
    /// compose file that `docker compose` accepts (sandbox's keys under `x-sandbox`).
    #[arg(long, value_enum, default_value = "sandbox")]
    pub format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Sandbox,
    Compose,
}

/// Whether `name` looks like it holds a secret.
pub fn is_secret(name: &str) -> bool {
    manifest::is_secret_name(name)
}

fn mask_secrets(manifest: &mut crate::manifest::Manifest) {
    for service in manifest.services.values_mut() {
        for (name, value) in service.environment.iter_mut() {
            if is_secret(name) && !value.is_empty() {
                *value = "********".to_string();
            }
        }
        if let Some(build) = service.build.as_mut() {
            for (name, value) in build.args.iter_mut() {
                if is_secret(name) && !value.is_empty() {
                    *value = "********".to_string();
                }
            }
        }
    }
}

/// The manifest as `config` shows it: each service's `mesh` is whether it is meshed, with its
/// ports (those `up` adds from the image are not known here) or why not.
fn shown(manifest: &Manifest) -> anyhow::Result<Yaml> {
    let mut tree = manifest::to_tree(manifest)?;
    let Some(Yaml::Mapping(services)) = tree.get_mut("services") else {
        return Ok(tree);
    };
    for (name, service) in services.iter_mut() {
        let (Some(name), Yaml::Mapping(fields)) = (name.as_str(), service) else {
            continue;
        };
        let Some(service) = manifest.services.get(name) else {
            continue;
        };
        let mut shown = Mapping::new();
        match mesh::verdict(manifest, service, None) {
            Verdict::Meshed { ports } => {
                shown.insert("meshed".into(), true.into());
                let ports = ports.into_iter().map(Yaml::from).collect();
                shown.insert("ports".into(), Yaml::Sequence(ports));
            }
            Verdict::Off(off) => {
                shown.insert("meshed".into(), false.into());
                shown.insert("reason".into(), off.to_string().into());
            }
        }
        fields.insert("mesh".into(), Yaml::Mapping(shown));
    }
    Ok(tree)
}

/// Prints the resolved manifest (YAML, or JSON with `--json`).
pub fn run(global: &GlobalArgs, args: ConfigArgs, printer: &Printer) -> anyhow::Result<u8> {
    if args.format == Format::Compose {
        let options = ExportOptions {
            show_secrets: args.show_secrets,
        };
        printer.stdout_text(&manifest::to_compose(
            &context::load_options(global),
            options,
        )?);
        return Ok(0);
    }
    let mut manifest = context::load_manifest(global)?;
    for warning in &manifest.warnings {
        printer.stderr_line(&warning.to_string());
    }
    if !args.show_secrets {
        mask_secrets(&mut manifest);
    }
    if args.services {
        for name in manifest.services.keys() {
            printer.stdout_line(name);
        }
    } else if global.json {
        printer.stdout_line(&serde_json::to_string_pretty(&shown(&manifest)?)?);
    } else {
        printer.stdout_text(&serde_yaml_ng::to_string(&shown(&manifest)?)?);
    }
    Ok(0)
}

/// Checks the manifest; prints every problem (exit 3) or a one-line confirmation.
pub fn validate(global: &GlobalArgs, printer: &Printer) -> anyhow::Result<u8> {
    let manifest = context::load_manifest(global)?;
    context::announce(&manifest, printer);
    let count = manifest.services.len();
    printer.stderr_line(&format!(
        "{} is valid: project `{}`, {count} service{}",
        manifest.file.display(),
        manifest.project,
        if count == 1 { "" } else { "s" }
    ));
    Ok(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn each_service_says_whether_it_is_meshed_and_why_not() {
        let manifest = crate::manifest::load_text(
            "name: shop\nservices:\n  web: {image: demo, port: 8080, expose: ['9090']}\n  local: {image: demo, port: 80, network_mode: host}\n  private: {image: demo, port: 81, mesh: false}\n  quiet: {image: demo}\n",
        );
        let json = serde_json::to_value(super::shown(&manifest).unwrap()).unwrap();
        let mesh = |service: &str| json["services"][service]["mesh"].clone();
        assert_eq!(
            mesh("web"),
            serde_json::json!({"meshed": true, "ports": [8080, 9090]})
        );
        assert_eq!(
            mesh("local"),
            serde_json::json!({"meshed": false, "reason": "`network_mode: host`"})
        );
        assert_eq!(
            mesh("private"),
            serde_json::json!({"meshed": false, "reason": "opted out (`mesh: false`)"})
        );
        assert_eq!(mesh("quiet")["meshed"], false);
        let yaml = serde_yaml_ng::to_string(&super::shown(&manifest).unwrap()).unwrap();
        assert!(yaml.contains("    mesh:\n      meshed: true\n"), "{yaml}");
    }

    #[test]
    fn secret_looking_names_are_recognised() {
        for name in [
            "DB_PASSWORD",
            "github_token",
            "CLIENT_SECRET",
            "STRIPE_API_KEY",
            "AUTH_HEADER",
        ] {
            assert!(super::is_secret(name), "{name}");
        }
        for name in ["PORT", "SERVICE_NAME", "ROUTES", "LOG_LEVEL"] {
            assert!(!super::is_secret(name), "{name}");
        }
    }
}

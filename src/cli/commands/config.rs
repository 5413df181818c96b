//! `sandbox config` and `sandbox validate`.

use crate::cli::context;
use crate::cli::GlobalArgs;
use crate::manifest::{self, ExportOptions};
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
        printer.stdout_line(&manifest::to_json(&manifest));
    } else {
        printer.stdout_text(&manifest::to_yaml(&manifest));
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

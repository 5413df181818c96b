//! `sandbox config` and `sandbox validate`.

use crate::cli::context;
use crate::cli::GlobalArgs;
use crate::manifest;
use crate::output::Printer;

#[derive(Debug, clap::Args)]
pub struct ConfigArgs {
    /// Print only the service names, one a line.
    #[arg(long)]
    pub services: bool,
}

/// Prints the resolved manifest (YAML, or JSON with `--json`).
pub fn run(global: &GlobalArgs, args: ConfigArgs, printer: &Printer) -> anyhow::Result<u8> {
    let manifest = context::load_manifest(global)?;
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
    let count = manifest.services.len();
    printer.stderr_line(&format!(
        "{} is valid: project `{}`, {count} service{}",
        manifest.file.display(),
        manifest.project,
        if count == 1 { "" } else { "s" }
    ));
    Ok(0)
}

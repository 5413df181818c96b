//! `sandbox init`: writes a starter manifest from the templates built into the binary.

use std::path::PathBuf;

use crate::manifest;
use crate::output::Printer;

#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// Template to start from (`--list` shows them).
    #[arg(long, short = 't', default_value = "basic")]
    pub template: String,
    /// Where to write it.
    #[arg(long, default_value = "sandbox.yaml")]
    pub output: PathBuf,
    /// Overwrite an existing file.
    #[arg(long)]
    pub force: bool,
    /// List the templates and exit.
    #[arg(long)]
    pub list: bool,
}

pub fn run(args: InitArgs, printer: &Printer) -> anyhow::Result<u8> {
    if args.list {
        for template in manifest::templates() {
            printer.stdout_line(&format!("{:<10} {}", template.name, template.description));
        }
        return Ok(0);
    }
    manifest::write_template(&args.template, &args.output, args.force)?;
    printer.stderr_line(&format!(
        "wrote {} from template `{}`; next: `sandbox up`",
        args.output.display(),
        args.template
    ));
    Ok(0)
}

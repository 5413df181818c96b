//! One file per command; each reads like a table of contents of what the command does.

pub mod ca;
pub mod config;
pub mod down;
pub mod init;
pub mod logs;
pub mod ps;
pub mod reap;
pub mod run;
pub mod test;
pub mod trace;
pub mod traces;
pub mod up;
pub mod zipkin;

use super::{Cli, Command};
use crate::output::Printer;

/// Runs the parsed command; the result is the exit code.
pub async fn run(cli: Cli, printer: &Printer) -> anyhow::Result<u8> {
    let global = cli.global;
    match cli.command {
        Command::Up(args) => up::run(&global, args, printer).await,
        Command::Down(args) => down::run(&global, args, printer).await,
        Command::Ps(args) => ps::run(&global, args, printer).await,
        Command::Logs(args) => logs::run(&global, args, printer).await,
        Command::Traces(args) => traces::run(&global, args, printer).await,
        Command::Trace(args) => trace::run(&global, args, printer).await,
        Command::Config(args) => config::run(&global, args, printer),
        Command::Validate => config::validate(&global, printer),
        Command::Init(args) => init::run(args, printer),
        Command::Prune(args) => down::prune(&args.into(), printer).await,
        Command::Test(args) => test::run(&global, args, printer).await,
        Command::Run(args) => run::run(&global, args, printer).await,
        Command::Zipkin(args) => zipkin::run(args, printer).await,
        Command::Ca(args) => ca::run(args, global.json, printer),
        Command::Reap => reap::run(&global).await,
    }
}

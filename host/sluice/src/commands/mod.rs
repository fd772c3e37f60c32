//! One module per command group.

mod admin;
mod audit;
mod catalog;
mod dlq;
mod plugin;
mod serve;
mod simulate;

use crate::cli::{Cli, Command};
use crate::paths::Paths;

/// Runs the parsed command.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let paths = Paths::new(&cli.data_dir, cli.plugins_dir.as_deref());
    match cli.command {
        Command::Serve(args) => serve::run(&paths, args),
        Command::Plugin(command) => plugin::run(&paths, command),
        Command::Users(command) => admin::users(&paths, command),
        Command::Grants(command) => admin::grants(&paths, command),
        Command::Tokens(command) => admin::tokens(&paths, command),
        Command::Dlq(command) => dlq::run(&paths, command),
        Command::Audit(args) => audit::run(&paths, args),
        Command::Catalog(command) => catalog::run(&paths, command),
        Command::Simulate(args) => simulate::run(args),
    }
}

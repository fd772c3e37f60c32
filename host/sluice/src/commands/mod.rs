//! One module per command group.

mod plugin;

use crate::cli::{Cli, Command};
use crate::paths::Paths;

/// Runs the parsed command.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let paths = Paths::new(&cli.data_dir, cli.plugins_dir.as_deref());
    match cli.command {
        Command::Plugin(command) => plugin::run(&paths, command),
    }
}

//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// sluice: ingestion host for clinical records, extended with sandboxed WebAssembly plugins.
#[derive(Debug, Parser)]
#[command(name = "sluice", version, about)]
pub struct Cli {
    /// Where sluice keeps its state (plugins, compiled-plugin cache, ...).
    #[arg(long, global = true, env = "SLUICE_DATA_DIR", default_value = "sluice-data")]
    pub data_dir: PathBuf,

    /// Directory of plugin `.wasm` files loaded beside the bundled plugins
    /// [default: DATA_DIR/plugins].
    #[arg(long, global = true, env = "SLUICE_PLUGINS_DIR")]
    pub plugins_dir: Option<PathBuf>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Inspect and try out plugins.
    #[command(subcommand)]
    Plugin(PluginCommand),
}

/// `sluice plugin ...`
#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// List loaded plugins: name, version, digest, content types, tables.
    List {
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Describe a plugin, or run it on a file and print the rows and rejections.
    Check(CheckArgs),
}

/// Arguments of `sluice plugin check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// A loaded plugin's name, or the path of a `.wasm` file.
    pub plugin: String,

    /// A file to transform (`-` for standard input).
    #[arg(long)]
    pub input: Option<PathBuf>,

    /// Content type of the input [default: guessed from the file extension].
    #[arg(long)]
    pub content_type: Option<String>,

    /// A plugin setting, `key=value`; repeat for several.
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_setting)]
    pub settings: Vec<(String, String)>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned tables for people.
    Table,
    /// One JSON document for programs.
    Json,
}

fn parse_setting(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => Ok((key.trim().to_string(), value.to_string())),
        _ => Err(format!("`{text}` is not KEY=VALUE")),
    }
}

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
    /// Run the API and the pipeline (the embedded default when no config is given).
    Serve(ServeArgs),
    /// Inspect and try out plugins.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Manage users.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Manage which users may post to which sources.
    #[command(subcommand)]
    Grants(GrantsCommand),
    /// Manage API tokens.
    #[command(subcommand)]
    Tokens(TokensCommand),
    /// Inspect and replay a source's dead-letter queue.
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// Read the audit log: who sent what to which source, failed logins (never record contents).
    Audit(AuditArgs),
    /// The Trino/Hive catalog of the warehouse.
    #[command(subcommand)]
    Catalog(CatalogCommand),
    /// Post generated or replayed records to a running sluice and report what happened.
    Simulate(SimulateArgs),
}

/// Arguments of `sluice simulate`.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Base URL of the sluice to post to; repeat for several instances: requests rotate
    /// between them, and a retry goes to the next one (as behind a load balancer).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: Vec<String>,
    /// A user to post as (repeat for several; requests rotate between them). Passwords never
    /// go on the command line, where every local user sees them in `ps`: they come from
    /// --password-file, --password-stdin or the environment variable SLUICE_PASSWORD.
    #[arg(long = "user", required_unless_present = "mllp", value_name = "NAME")]
    pub users: Vec<String>,
    /// Send HL7 v2 messages over MLLP to this listener (`127.0.0.1:2575`) instead of posting
    /// records: generated (an admission, lab results with 10 to 20 OBX, a discharge per
    /// patient) or the messages of --hl7 files. No --user: the listener's user applies.
    #[arg(long, value_name = "ADDRESS")]
    pub mllp: Option<String>,
    /// With --mllp, replay the messages of this HL7 v2 file (one per frame); repeatable.
    #[arg(long = "hl7", value_name = "FILE", requires = "mllp")]
    pub hl7: Vec<PathBuf>,
    /// A file of `NAME:PASSWORD` lines, one per --user.
    #[arg(long, value_name = "FILE", conflicts_with = "password_stdin")]
    pub password_file: Option<PathBuf>,
    /// Read one password, for every --user, from the first line of standard input.
    #[arg(long)]
    pub password_stdin: bool,
    /// Sources to generate EMRBots-shaped records for (admissions and lab results refer to
    /// generated patients).
    #[arg(long, value_delimiter = ',', default_value = "patients,admissions,lab_results")]
    pub generate: Vec<String>,
    /// Replay a file instead of generating: `SOURCE=FILE` (.csv, .tsv or .ndjson); repeatable.
    #[arg(long = "replay", value_name = "SOURCE=FILE", value_parser = parse_replay)]
    pub replay: Vec<(String, PathBuf)>,
    /// Records to generate [default: 10000 unless --duration is given].
    #[arg(long)]
    pub count: Option<u64>,
    /// Generate for this long (e.g. `60s`).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Option<std::time::Duration>,
    /// Target records per second (0: as fast as possible).
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Concurrent connections.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Records per request.
    #[arg(long, default_value_t = 100)]
    pub batch: u64,
    /// Share of requests sent as an unknown user (the seed's "hacker"), 0 to 1.
    #[arg(long, default_value_t = 0.0)]
    pub unauthorized_share: f64,
    /// Share of generated records given a value the plugins reject, 0 to 1.
    #[arg(long, default_value_t = 0.0)]
    pub malformed_share: f64,
    /// Seed of the generator, for a repeatable run [default: random, printed].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Print the final report as JSON.
    #[arg(long)]
    pub json: bool,
    /// How long to wait for an answer before giving up on a try (e.g. `30s`).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "30s")]
    pub timeout: std::time::Duration,
    /// Times to send a request again after a timeout, a cut connection, a 503 or a 409, under
    /// the same `Idempotency-Key` (every request carries one), so nothing is stored twice.
    #[arg(long, default_value_t = 5)]
    pub retries: u32,
}

fn parse_replay(text: &str) -> Result<(String, PathBuf), String> {
    match text.split_once('=') {
        Some((source, file)) if !source.is_empty() && !file.is_empty() => Ok((source.to_string(), PathBuf::from(file))),
        _ => Err(format!("`{text}` is not SOURCE=FILE")),
    }
}

/// `sluice catalog ...`
#[derive(Debug, Subcommand)]
pub enum CatalogCommand {
    /// Print the CREATE statements for every table the loaded plugins write.
    Ddl {
        /// Configuration file (warehouse URL, catalog and schema names).
        #[arg(long, env = "SLUICE_CONFIG")]
        config: Option<PathBuf>,
        /// SQL dialect.
        #[arg(long, value_enum, default_value_t = Dialect::Trino)]
        dialect: Dialect,
    },
}

/// SQL dialect of generated DDL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Dialect {
    /// Trino's Hive connector.
    Trino,
    /// Apache Hive.
    Hive,
}

/// `sluice dlq ...`
#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// List a source's dead letters: position, plugin, reason, field (never the record).
    List {
        /// Source name.
        source: String,
        /// Configuration file (the log to read); see docs/configuration.md.
        #[arg(long, env = "SLUICE_CONFIG")]
        config: Option<PathBuf>,
        /// Also list entries already replayed.
        #[arg(long)]
        all: bool,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Append the dead letters not yet replayed to the source's log again (e.g. after a plugin
    /// fix); the stream processes them like new records.
    Replay {
        /// Source name.
        source: String,
        /// Configuration file (the log to use); see docs/configuration.md.
        #[arg(long, env = "SLUICE_CONFIG")]
        config: Option<PathBuf>,
    },
}

/// Arguments of `sluice audit`: which rows to show. Every condition given must hold.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Rows of the last DURATION (`30m`, `24h`, `7d`) or since a time (`2026-12-01`,
    /// `2026-12-01T08:00:00Z`, UTC unless an offset is given).
    #[arg(long, value_name = "DURATION|TIME")]
    pub since: Option<String>,
    /// Rows before this time (same forms as --since).
    #[arg(long, value_name = "DURATION|TIME")]
    pub until: Option<String>,
    /// Rows of this user (for a failed login, the name claimed).
    #[arg(long)]
    pub user: Option<String>,
    /// Rows of this source.
    #[arg(long)]
    pub source: Option<String>,
    /// Rows of this client address.
    #[arg(long)]
    pub client: Option<String>,
    /// The row of this request id (an answer's `X-Request-Id`).
    #[arg(long)]
    pub request_id: Option<String>,
    /// Rows that ended so: accepted, rejected, auth_failed, forbidden, bad_request,
    /// unavailable, replayed, connected, disconnected.
    #[arg(long)]
    pub outcome: Option<String>,
    /// At most this many rows, the newest (shown oldest first).
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// Arguments of `sluice serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Configuration file (TOML); see docs/configuration.md.
    #[arg(long, env = "SLUICE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address and port to listen on (overrides server.listen).
    #[arg(long)]
    pub listen: Option<String>,
}

/// How a password is read.
#[derive(Debug, Args)]
pub struct PasswordArgs {
    /// Read the password from the first line of standard input instead of prompting.
    #[arg(long)]
    pub password_stdin: bool,
}

/// `sluice users ...`
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Add a user (the password is prompted for, or read with --password-stdin).
    Add {
        /// User name.
        name: String,
        #[command(flatten)]
        password: PasswordArgs,
    },
    /// List users with their grants and locks.
    List {
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Remove a user, with their grants and tokens.
    Remove {
        /// User name.
        name: String,
    },
    /// Change a user's password (also lifts a lock).
    Passwd {
        /// User name.
        name: String,
        #[command(flatten)]
        password: PasswordArgs,
    },
    /// Import a seed-style auth database (api_users, api_list, map_users_api).
    ImportSeed {
        /// The seed's SQLite file.
        file: PathBuf,
    },
}

/// `sluice grants ...`
#[derive(Debug, Subcommand)]
pub enum GrantsCommand {
    /// Let USER post to SOURCE.
    Add {
        /// User name.
        user: String,
        /// Source name.
        source: String,
    },
    /// Withdraw a grant.
    Remove {
        /// User name.
        user: String,
        /// Source name.
        source: String,
    },
    /// List grants, of one user or all.
    List {
        /// Only this user's grants.
        user: Option<String>,
    },
}

/// `sluice tokens ...`
#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// Create a token for USER; it is printed once.
    Create {
        /// User name.
        user: String,
        /// A note to recognize the token by.
        #[arg(long, default_value = "")]
        label: String,
        /// Lifetime, e.g. `90d`, `12h` (default: no expiry).
        #[arg(long, value_parser = humantime::parse_duration)]
        expires_in: Option<std::time::Duration>,
    },
    /// List tokens (never their secrets).
    List {
        /// Only this user's tokens.
        user: Option<String>,
    },
    /// Revoke a token by id.
    Revoke {
        /// Token id (from `tokens list`).
        id: String,
    },
}

/// `sluice plugin ...`
#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// List the plugins a server started now would load (the plugin directory's files, then the
    /// bundled ones; those the warehouse refuses left out): name, version, digest, content
    /// types, tables. What a running server holds is at its `GET /v1/sources`.
    List {
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Describe a plugin, or run a file through it as the host would (split, then transform) and
    /// print the rows and rejections.
    Check(CheckArgs),
    /// Write a new plugin project (outside this repository): its own manifest, the contract, the
    /// SDK, a sample input, a test, a README and a `build` script that writes NAME.wasm.
    New {
        /// The plugin's name, which becomes the source's name: lowercase letters, digits, `_`, `-`.
        name: String,
        /// The language to write it in.
        #[arg(long, value_enum)]
        lang: crate::scaffold::Lang,
        /// Where to write it [default: ./NAME].
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Print the plugin contract (WIT) this sluice loads plugins for: the newest version, or the
    /// one named. Save it as `wit/plugin.wit` in a plugin project.
    Wit {
        /// A contract version (e.g. `0.1.0`) [default: the newest].
        version: Option<String>,
    },
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

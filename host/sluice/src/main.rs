//! The `sluice` command line.

mod admission;
mod assembly;
mod check;
mod cli;
mod commands;
mod config;
mod data_lock;
mod open_files;
mod paths;
mod permissions;
mod render;
mod scaffold;

use clap::Parser;

/// jemalloc instead of glibc's malloc: ~35% more records/s through the embedded pipeline and a
/// lower peak RSS (glibc gave each transform and encode thread an arena whose freed memory stayed
/// mapped); measured in docs/performance.md.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's settings, read at its start (`_RJEM_MALLOC_CONF` in the environment overrides
/// them): two arenas instead of eight per core for sluice's many short-lived blocking threads,
/// freed pages returned after a second (not ten) by a background thread. Under the pipeline
/// bench this cut peak RSS by about a sixth at the same throughput (docs/performance.md).
/// Each thread also caches freed blocks up to 1 MiB (jemalloc's default stops at 32 KiB): the
/// request bodies, batches and column buffers of the data path are 64 KiB to 1 MiB, and every
/// one of them otherwise went back to the shared arena under its lock.
#[unsafe(export_name = "_rjem_malloc_conf")]
#[allow(non_upper_case_globals)]
pub static malloc_conf: &[u8] =
    b"narenas:2,dirty_decay_ms:1000,muzzy_decay_ms:0,background_thread:true,tcache_max:1048576\0";

/// C libraries (librdkafka's ~17 clients and their threads, SQLite, lz4) allocate with glibc's
/// malloc, which gives each contending thread an arena of its own (up to eight per core) and
/// keeps what they free mapped: under the Kafka pipeline bench, two arenas cut sluice's peak
/// RSS from 206–211 to 182–183 MiB at the same throughput (docs/performance.md). Called first
/// in `main`, before sluice starts threads; `MALLOC_ARENA_MAX` in the environment, when set,
/// decides instead.
fn limit_c_heap_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt sets a malloc parameter under glibc's own arena lock; no pointer is
        // involved.
        unsafe { libc::mallopt(libc::M_ARENA_MAX, 2) };
    }
}

/// The log filter of `sluice serve` when `SLUICE_LOG` is not set: sluice's own events at info
/// (none is per request or per record), every other crate's at warn.
const SERVE_LOG_FILTER: &str = "warn,sluice=info,sluice_runtime=info,sluice_api=info,sluice_log=info,sluice_kafka=info,sluice_stream=info,\
     sluice_warehouse=info,sluice_catalog=info,sluice_auth=info";

fn main() -> std::process::ExitCode {
    limit_c_heap_arenas();
    let cli = cli::Cli::parse();
    // `serve` says what it does (plugins loaded, replaced and unloaded, streams started,
    // catalog changes) by default; the admin commands only warn. `SLUICE_LOG` (an EnvFilter
    // directive such as `debug` or `warn,sluice_stream=debug`) overrides both.
    let default_filter = match cli.command {
        cli::Command::Serve(_) => SERVE_LOG_FILTER,
        _ => "warn",
    };
    permissions::private_by_default();
    // Colour only for a person at a terminal: log files and journals get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr()) && std::env::var_os("NO_COLOR").is_none();
    tracing_subscriber::fmt()
        .with_ansi(ansi)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SLUICE_LOG").unwrap_or_else(|_| default_filter.into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match commands::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", one_message(&error));
            std::process::ExitCode::FAILURE
        }
    }
}

/// An error and its causes as one line, `outer: cause: cause`, each cause said once: an error
/// that names its cause in its own message (`cannot read plugin x: No such file or directory`)
/// and also reports it as its source would otherwise say it twice.
pub(crate) fn one_message(error: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if message.ends_with(&text) {
            continue;
        }
        if !message.is_empty() {
            message.push_str(": ");
        }
        message.push_str(&text);
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error that names its cause in its message and reports it as its source too.
    #[derive(Debug)]
    struct Read {
        source: std::io::Error,
    }

    impl std::fmt::Display for Read {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "cannot read plugin x.wasm: {}", self.source)
        }
    }

    impl std::error::Error for Read {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.source)
        }
    }

    #[test]
    fn each_cause_is_said_once() {
        let io = || std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory (os error 2)");
        let error = anyhow::Error::new(Read { source: io() }).context("cannot check the plugin");
        assert_eq!(
            one_message(&error),
            "cannot check the plugin: cannot read plugin x.wasm: No such file or directory (os error 2)"
        );
        let plain = anyhow::Error::new(io()).context("cannot open sluice.toml");
        assert_eq!(one_message(&plain), "cannot open sluice.toml: No such file or directory (os error 2)");
    }
}

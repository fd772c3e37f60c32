//! The `sluice` command line.

mod cli;
mod commands;
mod config;
mod paths;
mod render;

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
#[unsafe(export_name = "_rjem_malloc_conf")]
#[allow(non_upper_case_globals)]
pub static malloc_conf: &[u8] = b"narenas:2,dirty_decay_ms:1000,muzzy_decay_ms:0,background_thread:true\0";

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("SLUICE_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    match commands::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

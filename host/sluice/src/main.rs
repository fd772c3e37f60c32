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

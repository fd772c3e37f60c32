//! Helpers shared by the command-line tests: run sluice on a data directory, run admin commands,
//! start `serve` and read what the embedded warehouse holds.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use base64::Engine as _;

pub mod feed;
pub mod seed;

/// The sluice binary on data directory `data`, without the plugin and config variables of the
/// environment the tests run in.
pub fn sluice(data: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sluice"));
    command.arg("--data-dir").arg(data).env_remove("SLUICE_PLUGINS_DIR").env_remove("SLUICE_CONFIG");
    command
}

/// Runs an admin command (with `stdin` fed to it): success, stdout, stderr.
pub fn admin(data: &Path, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    let mut child =
        sluice(data).args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    }
    let output = child.wait_with_output().unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A running server; killed on drop.
pub struct Server {
    pub child: Child,
    pub url: String,
    pub _stdout: BufReader<std::process::ChildStdout>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `sluice serve` on `data`, on a free port of 127.0.0.1.
pub fn start(data: &Path) -> Server {
    serving(sluice(data).args(["serve", "--listen", "127.0.0.1:0"]))
}

/// Spawns `command` (a `sluice serve`) and waits for the banner line naming its address.
pub fn serving(command: &mut Command) -> Server {
    let mut child = command.stdout(Stdio::piped()).spawn().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let url = first.trim().strip_prefix("sluice listening on ").expect("banner names the address").to_string();
    Server { child, url, _stdout: stdout }
}

/// An HTTP Basic authorization header value.
pub fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
}

/// Rows of `table` in the embedded warehouse, once it holds at least `rows`.
pub fn wait_rows(data: &Path, table: &str, rows: usize) -> Vec<String> {
    use arrow::array::{Array, AsArray};
    let url = format!("file://{}", std::path::absolute(data.join("warehouse")).unwrap().display());
    let warehouse = sluice_warehouse::Warehouse::open(&url, Default::default()).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let batches = runtime.block_on(warehouse.read_table(table)).unwrap();
        let mut values: Vec<String> = batches
            .iter()
            .flat_map(|(_, b)| {
                let column = b.column(0).as_string::<i32>().clone();
                (0..column.len()).map(move |i| column.value(i).to_string()).collect::<Vec<_>>()
            })
            .collect();
        if values.len() >= rows {
            values.sort();
            return values;
        }
        assert!(std::time::Instant::now() < deadline, "{table} has {} rows, expected {rows}", values.len());
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// The repository's root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs the `build` script of the plugin in `folder` (relative to the repository) and returns
/// the `.wasm` it wrote there.
pub fn build_plugin(folder: &str, wasm: &str) -> PathBuf {
    let folder = repo().join(folder);
    let output = Command::new(folder.join("build")).output().expect("the build script runs");
    assert!(
        output.status.success(),
        "{}/build failed:\n{}\n{}",
        folder.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    folder.join(wasm)
}

/// The sum of metric `name` over its labels, as the server at `url` reports it on /metrics (0
/// before it is first set, or when the server does not answer).
pub fn metric_total(url: &str, name: &str) -> f64 {
    let Ok(response) = reqwest::blocking::get(format!("{url}/metrics")) else { return 0.0 };
    let text = response.text().unwrap_or_default();
    text.lines()
        .filter(|line| line.split(['{', ' ']).next() == Some(name))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

//! The plugin author's path, as the issue puts it: `sluice plugin new NAME --lang L`, the
//! project's own test, `./build`, then `NAME.wasm` dropped into a running server's plugin
//! directory becomes the source NAME and the sample's rows land in the warehouse, with no edit.
//!
//! These reach the package registries (crates.io for the Rust SDK's dependencies, PyPI for
//! componentize-py, npm for esbuild, jco and componentize-js), as an author's machine does.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{admin, basic, sluice, wait_rows};

/// Runs `program args` in `dir`, failing the test with its output if it fails.
fn run(dir: &Path, program: &str, args: &[&str], env: &[(&str, &Path)]) {
    let mut command = Command::new(program);
    command.current_dir(dir).args(args);
    // The outer `cargo test`'s build settings are for sluice, not for the author's project.
    for var in ["RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS", "RUSTC_WORKSPACE_WRAPPER", "CARGO_BUILD_TARGET"] {
        command.env_remove(var);
    }
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().unwrap_or_else(|e| panic!("running {program}: {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?} in {} failed:\n{}\n{}",
        dir.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Makes project `name` in `lang`, runs its test and its build, and returns its folder.
fn built_project(work: &Path, name: &str, lang: &str, test: (&str, &[&str])) -> std::path::PathBuf {
    let project = work.join(name);
    let (ok, out, err) =
        admin(work, &["plugin", "new", name, "--lang", lang, "--dir", project.to_str().unwrap()], None);
    assert!(ok, "{err}");
    assert!(out.contains("./build"), "{out}");
    // Rust projects share one target directory across runs, as an author's machine keeps one.
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/plugin-projects");
    run(&project, test.0, test.1, &[("CARGO_TARGET_DIR", &target)]);
    run(&project, "./build", &[], &[("CARGO_TARGET_DIR", &target)]);
    assert!(project.join(format!("{name}.wasm")).is_file());
    project
}

/// Drops the project's plugin into a running server, posts its sample and checks the rows.
fn sample_lands_in_a_running_server(project: &Path, name: &str) {
    let data = tempfile::tempdir().unwrap();
    assert!(admin(data.path(), &["users", "add", "author", "--password-stdin"], Some("a-long-password\n")).0);
    let mut command = sluice(data.path());
    command.env("SLUICE__STREAM__ROLL_INTERVAL", "100ms").args(["serve", "--listen", "127.0.0.1:0"]);
    let server = common::serving(&mut command);
    // As the README says: copy under a hidden name, then rename into place.
    let plugins = data.path().join("plugins");
    std::fs::copy(project.join(format!("{name}.wasm")), plugins.join(".incoming")).unwrap();
    std::fs::rename(plugins.join(".incoming"), plugins.join(format!("{name}.wasm"))).unwrap();
    let (ok, _, err) = admin(data.path(), &["grants", "add", "author", name], None);
    assert!(ok, "{err}");

    let sample = std::fs::read(project.join("sample.csv")).unwrap();
    let client = reqwest::blocking::Client::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    let answer: serde_json::Value = loop {
        let response = client
            .post(format!("{}/v1/sources/{name}/records", server.url))
            .header("authorization", basic("author", "a-long-password"))
            .header("content-type", "text/csv")
            .body(sample.clone())
            .send()
            .unwrap();
        match response.status().as_u16() {
            202 => break response.json().unwrap(),
            // Not loaded yet: the server compiles the dropped file first.
            404 => {}
            status => panic!("{status}: {}", response.text().unwrap()),
        }
        assert!(Instant::now() < deadline, "the dropped plugin never became source {name}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(answer["accepted"], 3, "{answer}");
    let rejected: Vec<&str> =
        answer["rejected"].as_array().unwrap().iter().map(|r| r["field"].as_str().unwrap()).collect();
    assert_eq!(rejected, ["ObservedAt", "PatientID"]);
    let table = name.replace('-', "_");
    assert_eq!(wait_rows(data.path(), &table, 3), ["p-001", "p-002", "p-003"]);
    drop(server);
}

#[test]
fn a_python_project_builds_and_its_sample_lands_in_a_running_server() {
    let work = tempfile::tempdir().unwrap();
    let project = built_project(work.path(), "ward-obs-py", "python", ("python3", &["-m", "unittest"]));
    sample_lands_in_a_running_server(&project, "ward-obs-py");
}

#[test]
fn a_rust_project_builds_and_its_sample_lands_in_a_running_server() {
    let work = tempfile::tempdir().unwrap();
    let project = built_project(work.path(), "ward-obs-rs", "rust", ("cargo", &["test", "--quiet"]));
    sample_lands_in_a_running_server(&project, "ward-obs-rs");
}

#[test]
fn a_javascript_project_builds_and_its_sample_lands_in_a_running_server() {
    let work = tempfile::tempdir().unwrap();
    // `npm test` needs the packages `./build` installs, so build first.
    let project = work.path().join("ward-obs-js");
    let (ok, _, err) =
        admin(work.path(), &["plugin", "new", "ward-obs-js", "--lang", "js", "--dir", project.to_str().unwrap()], None);
    assert!(ok, "{err}");
    run(&project, "./build", &[], &[]);
    run(&project, "npm", &["test", "--silent"], &[]);
    sample_lands_in_a_running_server(&project, "ward-obs-js");

    // An npm scope is not part of the plugin's name; a name sluice cannot take stops the build.
    let manifest = project.join("package.json");
    let package = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, package.replace("\"ward-obs-js\"", "\"@st-mary/Ward.Obs\"")).unwrap();
    let refused = Command::new("./build").current_dir(&project).output().unwrap();
    assert!(!refused.status.success());
    assert_eq!(
        String::from_utf8_lossy(&refused.stderr).trim_end(),
        "error: package.json's name must be a plugin name: 1 to 64 lowercase letters, digits, - or _, starting with \
         a letter (an npm scope is dropped); it is `Ward.Obs`"
    );
    std::fs::write(&manifest, package.replace("\"ward-obs-js\"", "\"@st-mary/ward-obs-js\"")).unwrap();

    // A bug in the author's own code reaches the user with its message, not only as the
    // engine's `unreachable`.
    let app = std::fs::read_to_string(project.join("app.js")).unwrap();
    let buggy =
        app.replace("  check(row) {\n", "  check(row) {\n    if (row.Note === \"boom\") return row.nothing.here;\n");
    assert_ne!(app, buggy);
    std::fs::write(project.join("app.js"), buggy).unwrap();
    std::fs::remove_file(project.join("ward-obs-js.wasm")).unwrap();
    run(&project, "./build", &[], &[]);
    let input = project.join("boom.csv");
    std::fs::write(&input, "PatientID,ObservedAt,HeartRate,Temperature,Note\np-9,2026-11-27T08:00:00,70,37.0,boom\n")
        .unwrap();
    let data = tempfile::tempdir().unwrap();
    let wasm = project.join("ward-obs-js.wasm");
    let (ok, _, err) =
        admin(data.path(), &["plugin", "check", wasm.to_str().unwrap(), "--input", input.to_str().unwrap()], None);
    assert!(!ok);
    assert_eq!(
        err.trim_end(),
        "error: plugin ward-obs-js@0.1.0 trapped: wasm trap: wasm `unreachable` instruction executed: can't access \
         property \"here\", row.nothing is undefined"
    );
}

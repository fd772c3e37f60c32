//! The docker compose deployment, brought up for real. `tests/compose/test` runs this between
//! `tests/compose/up` and `tests/compose/down --volumes`, with the stack's published URLs in
//! `SLUICE_TEST_COMPOSE_API` and `SLUICE_TEST_COMPOSE_TRINO`; `cargo test` alone skips it.
//!
//! Everything reaches the stack the way a user's tools do: admin commands inside the sluice
//! container (`docker compose exec`), records through the published API port, queries through
//! the published Trino port.

mod common;

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::feed::{Feeder, PASSWORD};
use common::{repo, seed};

fn required_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run tests/compose/test"))
}

/// Runs `tests/compose/<name> ARGS` (with `stdin` fed to it) and returns its stdout.
fn script(name: &str, args: &[&str], stdin: Option<&str>) -> String {
    let mut child = Command::new(repo().join("tests/compose").join(name))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "tests/compose/{name} {args:?} failed");
    String::from_utf8(output.stdout).unwrap()
}

/// The engine's own client (the one Debian's docker.io installs; see tests/compose/lib.sh).
fn docker(args: &[&str]) -> String {
    let output = Command::new("/usr/bin/docker").args(args).output().unwrap();
    assert!(output.status.success(), "docker {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

fn sluice_container() -> String {
    script("compose", &["ps", "-q", "sluice"], None).trim().to_string()
}

#[test]
#[ignore = "needs the compose stack: tests/compose/test brings it up and runs this"]
fn the_compose_stack_answers_the_seed_queries_and_keeps_every_record_once_across_a_restart_and_a_kill() {
    let api = required_env("SLUICE_TEST_COMPOSE_API");
    let trino = required_env("SLUICE_TEST_COMPOSE_TRINO");

    // Its log, on stdout, says which plugins it loaded.
    let logs = script("compose", &["logs", "--no-color", "sluice"], None);
    for plugin in ["patients", "admissions", "lab_results"] {
        assert!(logs.contains(&format!("plugin loaded plugin={plugin}@")), "`compose logs sluice`:\n{logs}");
    }

    // A user and grants, made inside the sluice container as an operator does.
    script(
        "compose",
        &["exec", "-T", "sluice", "sluice", "users", "add", "feeder", "--password-stdin"],
        Some(&format!("{PASSWORD}\n")),
    );
    for source in ["patients", "admissions", "lab_results"] {
        script("compose", &["exec", "-T", "sluice", "sluice", "grants", "add", "feeder", source], None);
    }

    // The seed's three sources through the published API port; its queries through Trino's.
    let dir = tempfile::tempdir().unwrap();
    let mut simulate = Command::new(env!("CARGO_BIN_EXE_sluice"));
    simulate
        .env_remove("SLUICE_CONFIG")
        .env("SLUICE_PASSWORD", PASSWORD)
        .arg("--data-dir")
        .arg(dir.path().join("client"));
    let sent = seed::simulate_seed(simulate, &api, dir.path());
    seed::check_seed_queries(&trino, "sluice", &sent, Duration::from_secs(300));
    // The README's way to query: Trino's command-line client inside its container.
    let counted = script(
        "compose",
        &[
            "exec",
            "-T",
            "trino",
            "trino",
            "--catalog",
            "hive",
            "--schema",
            "sluice",
            "--execute",
            "select count(*) from patients",
        ],
        None,
    );
    assert_eq!(counted.trim().trim_matches('"'), sent[0].good.len().to_string());

    // Stopped and started again with its volumes: every row is still there, none twice, and
    // sluice serves again (the load below goes through it).
    script("down", &[], None);
    let urls = script("up", &[], None);
    assert!(urls.contains(&api) && urls.contains(&trino), "the same URLs after a restart: {urls}");
    seed::check_seed_queries(&trino, "sluice", &sent, Duration::from_secs(300));

    // SIGKILLed under load and started again by its restart policy. (`docker kill` counts as a
    // manual stop, after which the engine does not apply the policy: the process is killed from
    // the host instead, as the kernel's OOM killer or a crash would.)
    let container = sluice_container();
    let restarts = |c: &str| docker(&["inspect", "-f", "{{.RestartCount}}", c]).parse::<u32>().unwrap();
    let before = restarts(&container);
    let feeder = Feeder::new(&api);
    let total = 30_000;
    let feeding = feeder.spawn_retrying(total, 250);
    let acked = |feeder: &Feeder| feeder.acked.lock().unwrap().len();
    let deadline = Instant::now() + Duration::from_secs(120);
    while acked(&feeder) < 5_000 {
        assert!(Instant::now() < deadline, "the stack accepted {} records in 120 s", acked(&feeder));
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = docker(&["inspect", "-f", "{{.State.Pid}}", &container]);
    assert!(Command::new("kill").args(["-KILL", &pid]).status().unwrap().success());
    let at_kill = acked(&feeder);
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let state = docker(&["inspect", "-f", "{{.State.Health.Status}}", &container]);
        if restarts(&container) > before && state == "healthy" {
            break;
        }
        assert!(Instant::now() < deadline, "sluice was not restarted by its restart policy ({state})");
        std::thread::sleep(Duration::from_millis(250));
    }
    feeding.join().unwrap();
    let acked_ids = feeder.acked.lock().unwrap().clone();
    assert_eq!(acked_ids.len(), total as usize, "every record acknowledged in the end");
    assert!(at_kill < acked_ids.len(), "records were accepted after the restart");
    println!(
        "compose kill: {} acknowledged ({at_kill} before the kill), {} answers 503",
        acked_ids.len(),
        feeder.unavailable.load(Ordering::SeqCst)
    );

    // Exactly once, read through Trino: every record, none twice, nothing unsent. (Requests cut by
    // the kill were sent again under their Idempotency-Key: the docker proxy in front of the
    // published port accepts a connection even while sluice is down, so a client cannot tell a
    // refused request from a lost answer, and only the key makes its retry safe.)
    // (The feeder's patients are P0000..P0996; the seed's are hexadecimal UUIDs.)
    let client = sluice_catalog::TrinoClient::new(&trino, "analyst").with_schema("hive", "sluice");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let per_id = "select admissionid, count(*) from lab_results where patientid like 'P%' group by admissionid";
    let deadline = Instant::now() + Duration::from_secs(300);
    let counts: HashMap<i64, i64> = loop {
        let rows = runtime.block_on(client.execute(per_id)).unwrap_or_else(|e| panic!("{per_id}: {e}"));
        let counts: HashMap<i64, i64> = rows.iter().map(|r| (r[0].as_i64().unwrap(), r[1].as_i64().unwrap())).collect();
        if acked_ids.iter().all(|id| counts.contains_key(&i64::from(*id))) {
            break counts;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} acknowledged records visible in Trino after 300 s",
            acked_ids.iter().filter(|id| counts.contains_key(&i64::from(**id))).count(),
            acked_ids.len()
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "records stored more than once: {twice:?}");
    let sent: HashSet<i64> = acked_ids.iter().map(|id| i64::from(*id)).collect();
    let foreign: Vec<_> = counts.keys().filter(|id| !sent.contains(id)).collect();
    assert!(foreign.is_empty(), "rows nobody sent: {foreign:?}");
}

/// `docker run --rm` of IMAGE with a named volume at PATH holding `files` (name, content), as its
/// user would find it: the container's exit status and what it printed.
fn run_on_volume(image: &str, path: &str, files: &[(&str, &str)]) -> (bool, String) {
    let volume = format!("sluicetest-bad-{}-{}", std::process::id(), image.replace([':', '/'], "-"));
    let mount = format!("{volume}:{path}");
    let script: String =
        files.iter().map(|(name, content)| format!("printf '%s\\n' '{content}' > {path}/{name}; ")).collect();
    // The image's own user writes the files, as a former run would have.
    docker(&["run", "--rm", "-v", &mount, "--entrypoint", "sh", image, "-c", &script]);
    let output = Command::new("/usr/bin/docker").args(["run", "--rm", "-v", &mount, image]).output().unwrap();
    docker(&["volume", "rm", &volume]);
    let text = String::from_utf8_lossy(&output.stdout).to_string() + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text.trim().to_string())
}

#[test]
#[ignore = "needs the compose images: tests/compose/test builds them and runs this"]
fn bad_starts_fail_with_one_line_that_says_what_to_do() {
    // A volume written by another version: refused, not upgraded or formatted over.
    let (ok, said) = run_on_volume("sluice-kafka:local", "/var/lib/kafka", &[(".sluice-volume", "kafka 4.0.0")]);
    assert!(!ok);
    assert_eq!(
        said,
        "kafka: /var/lib/kafka was written by kafka 4.0.0 and this image runs kafka 4.1.1, which does not upgrade it: \
         run the image of kafka 4.0.0, or remove the volume (docker compose down --volumes; its data is lost)"
    );
    // A volume with data but no marker (another image's layout, a hand-made directory).
    let (ok, said) = run_on_volume("sluice-trino:local", "/var/lib/trino", &[("meta.properties", "node.id=1")]);
    assert!(!ok);
    assert_eq!(
        said,
        "trino: /var/lib/trino holds data that no version of this stack marked (/var/lib/trino/meta.properties); \
         it is not opened: remove the volume (docker compose down --volumes; its data is lost) or mount an empty one"
    );

    // The engine not running (a socket nobody serves), for a user who may not start it (root
    // would get it started): one line saying how to start it.
    let root = Command::new("id").arg("-u").output().unwrap().stdout == b"0\n";
    if root {
        let output = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "env", "HOME=/tmp"])
            .arg("DOCKER_HOST=unix:///tmp/sluice-test-no-engine.sock")
            .arg(repo().join("tests/compose/up"))
            .output()
            .unwrap();
        assert!(!output.status.success());
        assert_eq!(
            String::from_utf8_lossy(&output.stderr).trim(),
            "tests/compose: the docker engine is not running: start it (sudo dockerd, or sudo systemctl start docker)"
        );
    } else {
        println!("skipped the engine-not-running case: it runs `up` as another user, which needs root");
    }

    // A published port already taken: `tests/compose/up` says which and what to set, before it
    // builds or starts anything.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let output = Command::new(repo().join("tests/compose/up"))
        .env("COMPOSE_PROJECT_NAME", "sluicetestportcheck")
        .env("SLUICE_HTTP_PORT", &port)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let said = String::from_utf8_lossy(&output.stderr);
    let said = said.trim();
    // The line names the holder as `ss` shows it: this test binary's (shortened) name and pid.
    let expected_end = format!(" pid {}: stop it, or set SLUICE_HTTP_PORT to a free port", std::process::id());
    assert!(
        said.starts_with(&format!("tests/compose: 127.0.0.1:{port} is taken by \"compose-"))
            && said.ends_with(&expected_end)
            && !said.contains('\n'),
        "{said}"
    );
}

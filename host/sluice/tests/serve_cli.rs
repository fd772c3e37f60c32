//! `sluice serve` with `users`, `grants` and `tokens` run beside it, as an operator would.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use common::{Server, admin, basic, serving, sluice, start, wait_rows};

fn post(server: &Server, auth: &str) -> u16 {
    reqwest::blocking::Client::new()
        .post(format!("{}/v1/sources/lab_results/records", server.url))
        .header("authorization", auth)
        .header("content-type", "application/json")
        .body(r#"{"PatientID": "p1", "LabName": "CBC: HEMOGLOBIN", "LabValue": 13.2}"#)
        .send()
        .unwrap()
        .status()
        .as_u16()
}

#[test]
fn operators_manage_access_while_the_server_runs() {
    let data = tempfile::tempdir().unwrap();
    let (ok, out, err) = admin(data.path(), &["users", "add", "lab", "--password-stdin"], Some("first-password\n"));
    assert!(ok, "{err}");
    assert!(out.starts_with("user lab added"));
    assert!(admin(data.path(), &["grants", "add", "lab", "lab_results"], None).0);
    let server = start(data.path());

    assert_eq!(post(&server, &basic("lab", "first-password")), 202);
    let (ok, token, _) =
        admin(data.path(), &["tokens", "create", "lab", "--label", "feed", "--expires-in", "1h"], None);
    assert!(ok);
    let token = token.trim().to_string();
    assert_eq!(post(&server, &format!("Bearer {token}")), 202);

    // Changes made by other processes take effect at once, despite the verification cache.
    assert!(admin(data.path(), &["users", "passwd", "lab", "--password-stdin"], Some("second-password\n")).0);
    assert_eq!(post(&server, &basic("lab", "first-password")), 401);
    assert_eq!(post(&server, &basic("lab", "second-password")), 202);
    let id = token.split('_').nth(1).unwrap();
    assert!(admin(data.path(), &["tokens", "revoke", id], None).0);
    assert_eq!(post(&server, &format!("Bearer {token}")), 401);
    assert!(admin(data.path(), &["grants", "remove", "lab", "lab_results"], None).0);
    assert_eq!(post(&server, &basic("lab", "second-password")), 403);

    let (ok, listed, _) = admin(data.path(), &["users", "list", "--format", "json"], None);
    assert!(ok);
    let users: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(users[0]["name"], "lab");

    // What happened is in the audit log, which `sluice audit` reads while the server runs.
    let rows = audit_rows(data.path(), &["--since", "1h", "--source", "lab_results"], 6);
    let outcomes: Vec<&str> = rows.iter().map(|row| row["outcome"].as_str().unwrap()).collect();
    assert_eq!(
        outcomes,
        ["accepted", "accepted", "auth_failed", "accepted", "auth_failed", "forbidden"],
        "oldest first"
    );
    let accepted = audit_rows(data.path(), &["--user", "lab", "--outcome", "accepted", "--limit", "2"], 2);
    assert_eq!(accepted.len(), 2, "the newest two");
    assert!(accepted.iter().all(|row| row["user"] == "lab" && row["accepted"] == 1), "{accepted:?}");
    assert_eq!(accepted[1]["request_id"], rows[3]["request_id"]);
    let one = audit_rows(data.path(), &["--request-id", rows[5]["request_id"].as_str().unwrap()], 1);
    assert_eq!((one.len(), &one[0]["outcome"]), (1, &serde_json::json!("forbidden")));
    let (ok, out, _) = admin(data.path(), &["audit", "--until", "2000-01-01"], None);
    assert_eq!((ok, out.trim()), (true, "no audit rows match"));
    let (ok, _, err) = admin(data.path(), &["audit", "--since", "2026-12-02", "--until", "2026-12-01"], None);
    assert!(!ok);
    assert_eq!(
        err.trim(),
        "error: --since must be before --until (no row can be at or after 2026-12-02 00:00:00 UTC and before \
         2026-12-01 00:00:00 UTC)"
    );
    let (ok, _, err) = admin(data.path(), &["audit", "--limit", "0"], None);
    assert_eq!((ok, err.trim()), (false, "error: --limit must be at least 1"));
    let (ok, _, err) = admin(data.path(), &["audit", "--outcome", "denied"], None);
    assert!(!ok);
    assert_eq!(
        err.trim(),
        "error: --outcome `denied` is not an outcome (one of: accepted, rejected, auth_failed, forbidden, \
         bad_request, unavailable, replayed, connected, disconnected)"
    );
    let elsewhere = tempfile::tempdir().unwrap();
    let (ok, _, err) = admin(elsewhere.path(), &["audit"], None);
    assert!(!ok);
    assert!(err.starts_with("error: there is no auth store at "), "{err}");
    assert!(!elsewhere.path().join("auth.db").exists(), "reading the audit log creates no store");
}

/// `sluice audit ARGS --format json` once it lists at least `rows` rows (the server writes its
/// audit rows a few milliseconds after answering); fails after 10 s.
fn audit_rows(data: &Path, args: &[&str], rows: usize) -> Vec<serde_json::Value> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (ok, out, err) = admin(data, &[&["audit", "--format", "json"], args].concat(), None);
        assert!(ok, "{err}");
        let listed: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
        if listed.len() >= rows || std::time::Instant::now() > deadline {
            return listed;
        }
    }
}

#[test]
fn admin_errors_are_clear_and_change_nothing() {
    let data = tempfile::tempdir().unwrap();
    let (ok, _, err) = admin(data.path(), &["users", "add", "x", "--password-stdin"], Some("short\n"));
    assert!(!ok);
    // The first command on a data directory without an auth store says it made one (run from
    // the wrong directory, it would manage users no server sees).
    assert_eq!(
        err.trim().lines().collect::<Vec<_>>(),
        [
            format!(
                "note: there was no auth store at {}; a new one was created. A running `sluice serve` uses the one \
                 in its own data directory: pass the same --data-dir to manage its users",
                data.path().join("auth.db").display()
            )
            .as_str(),
            "error: password too short: at least 8 characters"
        ]
    );
    let (ok, _, err) = admin(data.path(), &["grants", "add", "ghost", "patients"], None);
    assert!(!ok);
    assert_eq!(err.trim(), "error: no user named `ghost`");
    let (_, listed, _) = admin(data.path(), &["users", "list", "--format", "json"], None);
    assert_eq!(listed.trim(), "[]");
    assert!(admin(data.path(), &["users", "add", "tok", "--password-stdin"], Some("tok-password\n")).0);
    for (expires_in, error) in [
        ("0s", "error: --expires-in must be longer than 0s: such a token would be expired when created"),
        ("99999999d", "error: --expires-in is too long (past the year 262143)"),
    ] {
        let (ok, out, err) = admin(data.path(), &["tokens", "create", "tok", "--expires-in", expires_in], None);
        assert!(!ok && out.is_empty(), "{expires_in}: {out}");
        assert_eq!(err.trim(), error);
    }
    let (_, tokens, _) = admin(data.path(), &["tokens", "list"], None);
    assert_eq!(tokens.trim(), "", "no token was made");
    // A grant to a source that is not loaded is kept (a plugin may be dropped in later) but
    // warned about: a misspelled source name would otherwise give a user nothing, silently.
    let (ok, out, err) = admin(data.path(), &["grants", "add", "tok", "patient"], None);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "tok may post to patient");
    assert_eq!(
        err.trim(),
        "warning: no source `patient` is loaded now (sources: admissions, hl7v2, lab_results, patients); the grant \
         takes effect once a plugin or [sources] binding of that name exists"
    );
    let (ok, _, err) = admin(data.path(), &["grants", "add", "tok", "patients"], None);
    assert!(ok && err.trim().is_empty(), "{err}");
    let (_, grants, _) = admin(data.path(), &["grants", "list", "tok"], None);
    assert_eq!(grants.trim().lines().collect::<Vec<_>>(), ["tok\tpatient", "tok\tpatients"]);
}

#[test]
fn a_bad_configuration_stops_serve_with_the_reason() {
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("sluice.toml");
    std::fs::write(&config, "[server]\nlisten = \"127.0.0.1:0\"\nport = 80\n").unwrap();
    let output = sluice(data.path()).args(["serve", "--config"]).arg(&config).output().unwrap();
    assert!(!output.status.success());
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("invalid configuration") && err.contains("unknown field: found `port`"), "{err}");

    // A certificate that cannot be loaded is the one error printed: nothing started before it
    // (a stream retrying on a closing runtime buried it under thousands of warnings).
    std::fs::write(
        &config,
        "[server]\nlisten = \"127.0.0.1:0\"\ntls_cert = \"/nonexistent/cert.pem\"\ntls_key = \"/nonexistent/key.pem\"\n",
    )
    .unwrap();
    let output = sluice(data.path()).args(["serve", "--config"]).arg(&config).output().unwrap();
    assert!(!output.status.success());
    let err = String::from_utf8_lossy(&output.stderr);
    let last = err.trim_end().lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: cannot load the TLS certificate /nonexistent/cert.pem and key /nonexistent/key.pem"),
        "{err}"
    );
    assert!(!err.contains("retrying") && !err.contains(" WARN sluice_stream"), "{err}");
    assert!(!String::from_utf8_lossy(&output.stdout).contains("listening"), "no banner before the failure");

    // A partitioning column a table cannot be partitioned by: its rows would be accepted and never
    // land, so serve refuses to start, naming the key and the columns that would do.
    for (column, problem) in [
        ("nosuchcol", "the table has no such column"),
        ("primarydiagnosiscode", "that column holds neither dates nor timestamps"),
    ] {
        std::fs::write(
            &config,
            format!("[server]\nlisten = \"127.0.0.1:0\"\n[warehouse.tables.admissions]\npartition_by = \"{column}\"\n"),
        )
        .unwrap();
        let output = sluice(data.path()).args(["serve", "--config"]).arg(&config).output().unwrap();
        assert!(!output.status.success());
        let err = String::from_utf8_lossy(&output.stderr);
        assert!(
            err.trim_end().ends_with(&format!(
                "error: warehouse.tables.admissions.partition_by = \"{column}\": {problem} (its date and timestamp \
                 columns: admissionstartdate, admissionenddate, ingest_received_at)"
            )),
            "{err}"
        );
    }
}

#[test]
fn with_a_certificate_and_key_serve_speaks_https() {
    let data = tempfile::tempdir().unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap().self_signed(&key).unwrap();
    let cert_path = data.path().join("cert.pem");
    let key_path = data.path().join("key.pem");
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    let config = data.path().join("sluice.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\ntls_cert = {:?}\ntls_key = {:?}\n",
            cert_path.display().to_string(),
            key_path.display().to_string()
        ),
    )
    .unwrap();
    let mut child = sluice(data.path())
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    stdout.read_line(&mut first).unwrap();
    let server =
        Server { url: first.trim().strip_prefix("sluice listening on ").unwrap().to_string(), child, _stdout: stdout };
    assert!(server.url.starts_with("https://127.0.0.1:"), "{}", server.url);
    let port = server.url.rsplit(':').next().unwrap();
    let https = Command::new("curl")
        .args(["-sS", "--cacert"])
        .arg(&cert_path)
        .arg(format!("https://localhost:{port}/healthz"))
        .output()
        .expect("curl is installed");
    assert_eq!(
        String::from_utf8_lossy(&https.stdout),
        r#"{"status":"ok"}"#,
        "{}",
        String::from_utf8_lossy(&https.stderr)
    );
    let plain = Command::new("curl")
        .args(["-sS", "--max-time", "5"])
        .arg(format!("http://localhost:{port}/healthz"))
        .output()
        .unwrap();
    assert_ne!(
        String::from_utf8_lossy(&plain.stdout),
        r#"{"status":"ok"}"#,
        "plain HTTP is not served on the TLS port"
    );
}

#[test]
fn the_embedded_default_lands_records_and_replays_dead_letters_after_a_fix() {
    let data = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(data.path().join("plugins")).unwrap();
    std::fs::copy(sluice_test_plugins::POISON, data.path().join("plugins/poison.wasm")).unwrap();
    assert!(admin(data.path(), &["users", "add", "lab", "--password-stdin"], Some("first-password\n")).0);
    assert!(admin(data.path(), &["grants", "add", "lab", "poison"], None).0);
    let start_with = |config: Option<&Path>| {
        let mut command = sluice(data.path());
        command.env("SLUICE__STREAM__ROLL_INTERVAL", "100ms").args(["serve", "--listen", "127.0.0.1:0"]);
        if let Some(config) = config {
            command.arg("--config").arg(config);
        }
        let mut child = command.stdout(Stdio::piped()).spawn().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        let url = first.trim().strip_prefix("sluice listening on ").unwrap().to_string();
        Server { child, url, _stdout: stdout }
    };
    let server = start_with(None);
    let response = reqwest::blocking::Client::new()
        .post(format!("{}/v1/sources/poison/records", server.url))
        .header("authorization", basic("lab", "first-password"))
        .header("content-type", "application/json")
        .body("\"good-1\"\n\"REJECT me\"\n")
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 202);
    assert_eq!(wait_rows(data.path(), "events", 1), vec!["\"good-1\""]);
    drop(server);

    let (ok, listed, err) = admin(data.path(), &["dlq", "list", "poison", "--format", "json"], None);
    assert!(ok, "{err}");
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed["entries"].as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed["entries"][0]["reason"], "the record is marked REJECT");
    assert_eq!(listed["entries"][0]["field"], "value");

    // The "fix": the source now runs the plugin leniently. Replay while it serves.
    let config = data.path().join("sluice.toml");
    std::fs::write(&config, "[sources.poison]\nplugin = \"poison\"\nsettings = { lenient = \"true\" }\n").unwrap();
    let _server = start_with(Some(&config));
    let (ok, out, err) = admin(data.path(), &["dlq", "replay", "poison"], None);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "replayed 1 record(s) of poison; 0 duplicate entr(ies) skipped");
    assert_eq!(wait_rows(data.path(), "events", 2), vec!["\"REJECT me\"", "\"good-1\""]);
    let (ok, out, _) = admin(data.path(), &["dlq", "replay", "poison"], None);
    assert!(ok);
    assert_eq!(out.trim(), "nothing to replay for poison");
    let (_, listed, _) = admin(data.path(), &["dlq", "list", "poison"], None);
    assert_eq!(listed.trim(), "no dead letters for poison waiting for replay");
    assert_eq!(wait_rows(data.path(), "events", 2).len(), 2, "nothing landed twice");
}

#[test]
fn the_simulator_generates_related_records_for_several_users_and_reports_them() {
    let data = tempfile::tempdir().unwrap();
    for (user, password) in [("north", "north-password"), ("south", "south-password")] {
        assert!(admin(data.path(), &["users", "add", user, "--password-stdin"], Some(&format!("{password}\n"))).0);
        for source in ["patients", "admissions", "lab_results"] {
            assert!(admin(data.path(), &["grants", "add", user, source], None).0);
        }
    }
    let mut command = sluice(data.path());
    command.env("SLUICE__STREAM__ROLL_INTERVAL", "100ms").args(["serve", "--listen", "127.0.0.1:0"]);
    let mut child = command.stdout(Stdio::piped()).spawn().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let server =
        Server { url: first.trim().strip_prefix("sluice listening on ").unwrap().to_string(), child, _stdout: stdout };

    let passwords = data.path().join("passwords");
    std::fs::write(&passwords, "# NAME:PASSWORD\nnorth:north-password\nsouth:south-password\n").unwrap();
    let args = [
        "simulate",
        "--url",
        &server.url,
        "--user",
        "north",
        "--user",
        "south",
        "--password-file",
        passwords.to_str().unwrap(),
        "--count",
        "900",
        "--batch",
        "50",
        "--connections",
        "3",
        "--unauthorized-share",
        "0.3",
        "--seed",
        "11",
        "--json",
    ];
    let (ok, out, err) = admin(data.path(), &args, None);
    assert!(ok, "{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["records"], 900, "{report}");
    assert_eq!(report["accepted"], 900, "no malformed records were asked for: {report}");
    assert_eq!(report["rejected"], 0);
    assert_eq!(report["errors"], 0);
    assert!(report["unauthorized"].as_u64().unwrap() > 0, "{report}");
    assert_eq!(report["requests"].as_u64().unwrap(), 18 + report["unauthorized"].as_u64().unwrap());
    for source in ["patients", "admissions", "lab_results"] {
        assert_eq!(report["sources"][source]["accepted"], 300, "{report}");
    }
    let latency = &report["latency_ms"];
    assert!(latency["p50"].as_f64().unwrap() <= latency["p99"].as_f64().unwrap());
    assert!(latency["p99"].as_f64().unwrap() <= latency["max"].as_f64().unwrap());

    // Admissions and lab results refer to generated patients and admissions.
    let patients: std::collections::HashSet<String> = wait_rows(data.path(), "patients", 300).into_iter().collect();
    let admissions = wait_rows(data.path(), "admissions", 300);
    assert!(admissions.iter().all(|id| patients.contains(id)), "every admission's patient was generated");
    let labs = wait_rows(data.path(), "lab_results", 300);
    assert!(labs.iter().all(|id| patients.contains(id)), "every lab result's patient was generated");

    // The audit log saw both users.
    let (_, users, _) = admin(data.path(), &["users", "list", "--format", "json"], None);
    assert!(users.contains("north") && users.contains("south"));
}

/// Runs `sluice serve` on `address` at the default log level until it exits (on an error, in
/// these tests), with what it printed.
fn serve_to_the_end(data: &Path, address: &str) -> std::process::Output {
    sluice(data)
        .args(["serve", "--listen", address])
        .env_remove("SLUICE_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

/// A taken port is the one line the operator sees, before anything else starts.
#[test]
fn a_taken_port_is_one_clear_error_before_anything_starts() {
    let data = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let output = serve_to_the_end(data.path(), &address);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].starts_with(&format!("error: cannot listen on {address}: ")), "{stderr}");
    assert!(lines[0].ends_with("(is another sluice running? choose another address with --listen or server.listen)"));
    assert!(output.stdout.is_empty(), "nothing started: {}", String::from_utf8_lossy(&output.stdout));
    assert!(!data.path().join("spool.db").exists(), "no log was opened");
}

/// A second `serve` on a data directory a server already uses (which would read the same log
/// and write every record twice) stops with one line naming the other; once that one is gone,
/// a `kill -9` included, the data directory is free again.
#[test]
fn a_second_server_on_one_data_directory_is_refused() {
    let data = tempfile::tempdir().unwrap();
    let mut first = start(data.path());
    let output = serve_to_the_end(data.path(), "127.0.0.1:0");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr.trim_end(),
        format!(
            "error: the data directory {} is in use by another sluice serve (pid {}): two servers on one data \
             directory would store every record twice; stop that one, or give this one its own --data-dir",
            data.path().display(),
            first.child.id()
        )
    );
    assert!(output.stdout.is_empty(), "nothing started: {}", String::from_utf8_lossy(&output.stdout));
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    let _again = start(data.path());
}

/// A first `serve` on a fresh data directory creates the plugin directory it watches, so that
/// the README's "drop a .wasm into sluice-data/plugins" works without a restart.
#[test]
fn serve_creates_the_plugin_directory_it_watches_and_counts_files_that_fail() {
    let data = tempfile::tempdir().unwrap();
    let plugins = data.path().join("plugins");
    assert!(!plugins.exists());
    let server = start(data.path());
    assert!(plugins.is_dir(), "serve did not create {}", plugins.display());
    assert_eq!(common::metric_total(&server.url, "sluice_plugin_files_failed"), 0.0);
    // A file that does not load is counted for alerts, and no longer once it is removed.
    std::fs::write(plugins.join("broken.wasm"), b"not wasm").unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while common::metric_total(&server.url, "sluice_plugin_files_failed") != 1.0 {
        assert!(std::time::Instant::now() < deadline, "the failed file was not counted");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::fs::remove_file(plugins.join("broken.wasm")).unwrap();
    while common::metric_total(&server.url, "sluice_plugin_files_failed") != 0.0 {
        assert!(std::time::Instant::now() < deadline, "the removed file is still counted");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Without a terminal to prompt on, `users add` says how to pass the password instead.
#[test]
fn users_add_without_a_terminal_says_to_use_password_stdin() {
    let data = tempfile::tempdir().unwrap();
    // setsid: a new session has no controlling terminal, as under cron, systemd or CI.
    let output = Command::new("setsid")
        .arg(env!("CARGO_BIN_EXE_sluice"))
        .arg("--data-dir")
        .arg(data.path())
        .args(["users", "add", "hospital"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert_eq!(
        String::from_utf8_lossy(&output.stderr).trim_end().lines().last().unwrap_or_default(),
        "error: no terminal to ask for the password of hospital: pass it on standard input with --password-stdin \
         (e.g. `printf '%s\\n' \"$PASSWORD\" | sluice users add hospital --password-stdin`)"
    );
    let (_, users, _) = admin(data.path(), &["users", "list"], None);
    assert!(!users.contains("hospital"), "{users}");
}

/// `dlq` commands refuse a source sluice does not know instead of reporting it empty.
#[test]
fn dlq_commands_refuse_an_unknown_source() {
    let data = tempfile::tempdir().unwrap();
    for command in ["list", "replay"] {
        let (ok, out, err) = admin(data.path(), &["dlq", command, "nosuch"], None);
        assert!(!ok, "{out}");
        assert_eq!(
            err.trim_end(),
            "error: no source `nosuch` (sources: admissions, hl7v2, lab_results, patients)",
            "{command}"
        );
    }
    // A data directory no server ran in (a mistyped --data-dir) is said to be one, not read as
    // an empty log it would be created for.
    for command in ["list", "replay"] {
        let (ok, _, err) = admin(data.path(), &["dlq", command, "patients"], None);
        assert!(!ok);
        assert_eq!(
            err.trim_end(),
            format!(
                "error: there is no spool at {}: pass the --data-dir of the `sluice serve` whose log to read",
                data.path().join("spool.db").display()
            )
        );
    }
    assert!(!data.path().join("spool.db").exists(), "nothing was created");
    drop(start(data.path()));
    let (ok, out, err) = admin(data.path(), &["dlq", "list", "patients"], None);
    assert!(ok, "{err}");
    assert_eq!(out.trim_end(), "no dead letters for patients waiting for replay");
}

/// `sluice_records_accepted_total` as the server's /metrics reports it (0 before the first).
fn accepted_so_far(url: &str) -> f64 {
    common::metric_total(url, "sluice_records_accepted_total")
}

/// Whether the server is holding back answers of stored records right now (fault injection).
fn answers_held(url: &str) -> bool {
    common::metric_total(url, "sluice_fault_answers_held") > 0.0
}

/// A sender that retries under idempotency keys (the simulator does) gets every record stored
/// exactly once, though sluice is killed (SIGKILL) twice in the middle of the run and started
/// again: once while records flow, once while answers of stored requests are held back (the
/// kill loses them, and the retries must be answered from what was stored, not stored again).
#[test]
fn records_sent_with_retries_land_exactly_once_across_a_kill() {
    let data = tempfile::tempdir().unwrap();
    assert!(admin(data.path(), &["users", "add", "lab", "--password-stdin"], Some("kill-test-password\n")).0);
    assert!(admin(data.path(), &["grants", "add", "lab", "patients"], None).0);
    // A fixed address, so that the simulator's retries reach the restarted server.
    let address = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string();
    let start = |answer_delay_ms: Option<u64>| {
        let mut command = sluice(data.path());
        command.env("SLUICE__STREAM__ROLL_INTERVAL", "100ms").args(["serve", "--listen", &address]);
        if let Some(ms) = answer_delay_ms {
            command.env("SLUICE_FAULT_ANSWER_DELAY_MS", ms.to_string());
        }
        serving(&mut command)
    };
    let wait_for = |what: &str, done: &dyn Fn() -> bool| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while !done() {
            assert!(std::time::Instant::now() < deadline, "{what}");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    };
    let server = start(None);
    let url = server.url.clone();
    const RECORDS: usize = 6000;
    let simulate = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .env("SLUICE_PASSWORD", "kill-test-password")
        .args(["simulate", "--url", &url, "--user", "lab", "--generate", "patients"])
        .args(["--count", &RECORDS.to_string(), "--batch", "20", "--connections", "4", "--retries", "100"])
        .args(["--timeout", "10s", "--seed", "11", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // First kill: records are flowing, requests are in every state.
    wait_for("the simulator's records never arrived", &|| accepted_so_far(&url) >= 1000.0);
    drop(server); // SIGKILL
    // Second kill: answers of stored requests are held far longer than it takes to kill, so
    // the kill certainly loses answers of requests whose records are durable.
    let server = start(Some(8_000));
    wait_for("no answer of a stored request was held", &|| answers_held(&url));
    drop(server); // SIGKILL
    let server = start(None);
    let output = simulate.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["accepted"], RECORDS, "{report}");
    assert_eq!(report["errors"], 0, "{report}");
    assert!(report["retries"].as_u64().unwrap() > 0, "the kills interrupted requests: {report}");
    assert!(report["replayed"].as_u64().unwrap() > 0, "some retries were of stored requests: {report}");

    let ids = wait_rows(data.path(), "patients", RECORDS);
    drop(server);
    let distinct: std::collections::BTreeSet<&String> = ids.iter().collect();
    assert_eq!((ids.len(), distinct.len()), (RECORDS, RECORDS), "every record once in the warehouse");
    let spool = sluice_log::SqliteSpool::open(sluice_log::SpoolConfig::new(data.path().join("spool.db"))).unwrap();
    let logged: usize = (0..spool.partitions()).map(|p| spool.read("patients", p, 0, 100_000).unwrap().len()).sum();
    assert_eq!(logged, RECORDS, "every record once in the log");
}

/// Every file and directory under `dir`, with its permission bits.
fn modes(dir: &Path) -> Vec<(std::path::PathBuf, u32)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        out.push((path.clone(), std::fs::metadata(&path).unwrap().permissions().mode() & 0o777));
        if path.is_dir() {
            out.extend(modes(&path));
        }
    }
    out
}

/// Left running, the server keeps its data private (0700 directories, 0600 files: password
/// hashes, spooled records, Parquet files) and its spool trimmed to what the warehouse has not
/// yet committed (`log.retention = "0s"`); wider modes found at start are warned about.
#[test]
fn a_server_left_running_keeps_its_data_private_and_its_spool_trimmed() {
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir().unwrap();
    let data = parent.path().join("data");
    assert!(admin(&data, &["users", "add", "lab", "--password-stdin"], Some("private-password\n")).0);
    assert!(admin(&data, &["grants", "add", "lab", "patients"], None).0);
    let start = |data: &Path| {
        serving(
            sluice(data)
                .env("SLUICE__STREAM__ROLL_INTERVAL", "100ms")
                .env("SLUICE__LOG__RETENTION", "0s")
                .args(["serve", "--listen", "127.0.0.1:0"])
                .stderr(Stdio::piped()),
        )
    };
    let mut server = start(&data);
    let body: String =
        (0..500).map(|i| format!("{{\"PatientID\": \"p{i}\", \"PatientGender\": \"Female\"}}\n")).collect();
    let response = reqwest::blocking::Client::new()
        .post(format!("{}/v1/sources/patients/records", server.url))
        .header("authorization", basic("lab", "private-password"))
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 202);
    assert_eq!(wait_rows(&data, "patients", 500).len(), 500);

    // The trimmer (every 10 s) removes what the warehouse has committed.
    let spool = sluice_log::SqliteSpool::open(sluice_log::SpoolConfig {
        trim_every: None,
        ..sluice_log::SpoolConfig::new(data.join("spool.db"))
    })
    .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while runtime.block_on(spool.stored_records()).unwrap() > 0 {
        assert!(std::time::Instant::now() < deadline, "the spool still holds committed records");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    drop(spool);

    let all = modes(&data);
    assert!(all.iter().any(|(p, _)| p.extension().is_some_and(|e| e == "parquet")), "{all:?}");
    assert_eq!(std::fs::metadata(&data).unwrap().permissions().mode() & 0o777, 0o700);
    for (path, mode) in &all {
        let wanted = if path.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(*mode, wanted, "{} is {mode:04o}", path.display());
    }
    let _ = server.child.kill();
    let _ = server.child.wait();
    drop(server);

    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(data.join("auth.db"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut server = start(&data);
    let _ = server.child.kill();
    let _ = server.child.wait();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut server.child.stderr.take().unwrap(), &mut stderr).unwrap();
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.starts_with("warning: ")).collect();
    assert_eq!(
        warnings,
        vec![
            format!(
                "warning: {0} is readable by other users (mode 0755, expected 0700): run `chmod 700 {0}`",
                data.display()
            ),
            format!(
                "warning: {0} is readable by other users (mode 0644, expected 0600): run `chmod 600 {0}`",
                data.join("auth.db").display()
            ),
        ],
        "{stderr}"
    );
}

/// The data directory's file system fills up under load (another program takes every byte):
/// the API answers 507 instead of taking the stream's room, and once space is freed, while the
/// load goes on, every acknowledged record lands exactly once. Needs root (a small tmpfs is
/// mounted for the data directory); skipped with a message otherwise.
#[test]
fn a_full_disk_under_load_recovers_once_space_is_freed_and_loses_nothing() {
    use std::collections::BTreeSet;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    let parent = tempfile::tempdir().unwrap();
    let data = parent.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let mounted = Command::new("mount").args(["-t", "tmpfs", "-o", "size=48m,mode=0700", "tmpfs"]).arg(&data).status();
    if !mounted.is_ok_and(|s| s.success()) {
        eprintln!("skipped: mounting a tmpfs needs root");
        return;
    }
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(data.clone());
    assert!(admin(&data, &["users", "add", "lab", "--password-stdin"], Some("disk-full-password\n")).0);
    assert!(admin(&data, &["grants", "add", "lab", "patients"], None).0);
    let server = serving(
        sluice(&data)
            .env("SLUICE__STREAM__ROLL_INTERVAL", "100ms")
            .env("SLUICE__LOG__RETENTION", "0s")
            .env("SLUICE__LOG__MIN_FREE", "12 MiB")
            .args(["serve", "--listen", "127.0.0.1:0"]),
    );
    let url = server.url.clone();

    // The load: 100 patients per request, each id once; a 507 is retried later with new ids.
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let statuses = Arc::new(Mutex::new(std::collections::BTreeMap::<u16, usize>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let feeder = {
        let (acked, statuses, stop) = (acked.clone(), statuses.clone(), stop.clone());
        std::thread::spawn(move || {
            let client = reqwest::blocking::Client::new();
            let mut next = 0;
            while !stop.load(Ordering::SeqCst) {
                let ids: Vec<String> = (next..next + 100).map(|i| format!("p{i:08}")).collect();
                next += 100;
                let body: String = ids
                    .iter()
                    .map(|id| format!("{{\"PatientID\": \"{id}\", \"PatientLanguage\": \"{}\"}}\n", "x".repeat(200)))
                    .collect();
                let status = client
                    .post(format!("{url}/v1/sources/patients/records"))
                    .header("authorization", basic("lab", "disk-full-password"))
                    .header("content-type", "application/x-ndjson")
                    .body(body)
                    .send()
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0);
                *statuses.lock().unwrap().entry(status).or_default() += 1;
                match status {
                    202 => acked.lock().unwrap().extend(ids),
                    // Nothing accepted: 507 below the free-space floor, 503 when the log or the
                    // audit log could not be written at all.
                    503 | 507 => std::thread::sleep(std::time::Duration::from_millis(50)),
                    other => panic!("unexpected answer {other} under a full disk"),
                }
            }
        })
    };
    let sizes = |dir: &Path| -> Vec<(String, u64)> {
        modes(dir)
            .into_iter()
            .filter(|(p, _)| p.is_file())
            .map(|(p, _)| {
                (p.strip_prefix(dir).unwrap().display().to_string(), std::fs::metadata(&p).map_or(0, |m| m.len()))
            })
            .filter(|(_, size)| *size > 1 << 20)
            .collect()
    };
    let wait_acked = |count: usize| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while acked.lock().unwrap().len() < count {
            assert!(
                std::time::Instant::now() < deadline,
                "the API stopped taking records: {:?}; files over 1 MiB: {:?}",
                statuses.lock().unwrap(),
                sizes(&data)
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    };
    wait_acked(5_000);

    // Another program takes every free byte.
    let filler = data.join("filler");
    {
        let mut file = std::fs::File::create(&filler).unwrap();
        let block = vec![7u8; 1 << 20];
        while file.write_all(&block).is_ok() {}
        let _ = file.write_all(&block[..4096]);
    }
    let refused = || {
        let statuses = statuses.lock().unwrap();
        statuses.get(&503).copied().unwrap_or(0) + statuses.get(&507).copied().unwrap_or(0)
    };
    let refused_before = refused();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while refused() < refused_before + 5 {
        assert!(
            std::time::Instant::now() < deadline,
            "records were still taken on a full disk: {:?}",
            statuses.lock().unwrap()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let during = acked.lock().unwrap().len();

    // Space comes back while the load goes on: the API takes records again.
    std::fs::remove_file(&filler).unwrap();
    wait_acked(during + 5_000);

    // Space runs short again, just above the floor: the API stops at the floor (507), the
    // stream keeps the room to commit and trim, and the API takes records again on its own.
    let available = || -> u64 {
        let out = Command::new("df").args(["--output=avail", "-B1"]).arg(&data).output().unwrap();
        String::from_utf8_lossy(&out.stdout).lines().nth(1).unwrap().trim().parse().unwrap()
    };
    let short = data.join("filler-short");
    {
        let mut file = std::fs::File::create(&short).unwrap();
        let mut left = available().saturating_sub(14 << 20);
        let block = vec![7u8; 1 << 20];
        while left >= block.len() as u64 {
            file.write_all(&block).unwrap();
            left -= block.len() as u64;
        }
    }
    let floor_before = statuses.lock().unwrap().get(&507).copied().unwrap_or(0);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while statuses.lock().unwrap().get(&507).copied().unwrap_or(0) < floor_before + 3 {
        assert!(std::time::Instant::now() < deadline, "no 507 at the free-space floor: {:?}", statuses.lock().unwrap());
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let at_floor = acked.lock().unwrap().len();
    wait_acked(at_floor + 3_000);
    stop.store(true, Ordering::SeqCst);
    feeder.join().unwrap();

    let acked: Vec<String> = acked.lock().unwrap().clone();
    let ids = wait_rows(&data, "patients", acked.len());
    drop(server);
    let distinct: BTreeSet<&String> = ids.iter().collect();
    assert_eq!((ids.len(), distinct.len()), (acked.len(), acked.len()), "every acknowledged record once");
    assert_eq!(distinct, acked.iter().collect::<BTreeSet<_>>());
    println!(
        "full disk: {:?} answers by status, {} records acknowledged and landed",
        statuses.lock().unwrap(),
        acked.len()
    );
}

#[test]
fn the_simulator_says_why_a_request_could_not_be_sent() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let output = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .env("SLUICE_PASSWORD", "any-password")
        .args(["simulate", "--url", &format!("http://127.0.0.1:{port}"), "--user", "lab"])
        .args(["--count", "1", "--retries", "0", "--timeout", "5s"])
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("error: 1 requests failed"), "{stderr}");
    assert!(
        stdout.contains("tcp connect error: Connection refused"),
        "the cause is said, not only `error sending request`: {stdout}"
    );
}

/// Passwords in the URLs of the services sluice talks to are not printed.
#[test]
fn passwords_in_service_urls_stay_out_of_the_banner() {
    let data = tempfile::tempdir().unwrap();
    let mut server = serving(
        sluice(data.path())
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("SLUICE__CATALOG__TRINO_URL", "http://admin:Trino-s3cret@127.0.0.1:9")
            .stderr(Stdio::null()),
    );
    let mut banner = String::new();
    while !banner.contains("\nsources: ") {
        assert_ne!(server._stdout.read_line(&mut banner).unwrap(), 0, "the banner ended early: {banner}");
    }
    assert!(banner.contains("catalog: Trino at http://admin:***@127.0.0.1:9"), "{banner}");
    assert!(!banner.contains("s3cret"), "{banner}");
}

/// The output of a `serve` expected to refuse to start; one that serves instead is stopped and
/// fails the test (rather than leaving it waiting for a server that never exits).
fn refused_start(command: &mut Command) -> std::process::Output {
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!("serve started instead of refusing: {}", String::from_utf8_lossy(&output.stdout));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// A server whose spool is gone, beside a warehouse written from it, refuses to start: a new
/// spool would number records from 0 again, and the stream would skip them as already written.
#[test]
fn a_lost_spool_beside_a_written_warehouse_stops_serve() {
    let data = tempfile::tempdir().unwrap();
    assert!(admin(data.path(), &["users", "add", "lab", "--password-stdin"], Some("lab-password\n")).0);
    assert!(admin(data.path(), &["grants", "add", "lab", "lab_results"], None).0);
    let server = serving(
        sluice(data.path()).args(["serve", "--listen", "127.0.0.1:0"]).env("SLUICE__STREAM__ROLL_INTERVAL", "1s"),
    );
    assert_eq!(post(&server, &basic("lab", "lab-password")), 202);
    wait_rows(data.path(), "lab_results", 1);
    drop(server);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(data.path().join(format!("spool.db{suffix}")));
    }
    let output = refused_start(sluice(data.path()).args(["serve", "--listen", "127.0.0.1:0"]));
    assert!(!output.status.success());
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        err.trim_end().ends_with(&format!(
            "error: there is no spool at {}, but the warehouse already holds tables written from one (lab_results): \
             a new spool would number records from 0 again, and the stream would skip them as already written. \
             Restore the spool, or give this server a new warehouse (warehouse.url) or data directory",
            data.path().join("spool.db").display()
        )),
        "{err}"
    );
    assert!(!data.path().join("spool.db").exists(), "no new spool was left behind");
}

/// A loaded plugin whose table the warehouse's files cannot follow (here: `patients` files whose
/// `patientid` is an integer) stops serve with the reason before a record is accepted (before:
/// every record for its source was accepted, then dead-lettered); the warehouse is left as it
/// was, `plugin check` of the plugin's file says the same, and serve starts once the table is
/// one the plugin can write.
#[test]
fn a_plugin_whose_table_the_warehouse_cannot_follow_stops_serve() {
    use arrow::array::{Int64Array, RecordBatch, TimestampMicrosecondArray};
    use arrow::datatypes::{DataType, Field, Schema, TimeUnit};

    let data = tempfile::tempdir().unwrap();
    // A server ran here before (its spool is what a warehouse beside it needs).
    drop(start(data.path()));
    let warehouse = data.path().join("warehouse");
    let schema = Schema::new(vec![
        Field::new("patientid", DataType::Int64, false),
        Field::new("ingest_received_at", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), false),
    ]);
    let rows = RecordBatch::try_new(
        std::sync::Arc::new(schema),
        vec![
            std::sync::Arc::new(Int64Array::from(vec![7])),
            std::sync::Arc::new(TimestampMicrosecondArray::from(vec![1_795_780_800_000_000]).with_timezone("UTC")),
        ],
    )
    .unwrap();
    let segment = sluice_warehouse::Segment {
        source: "legacy".into(),
        partition: 0,
        first: 0,
        last: 0,
        tables: vec![("patients".into(), vec![rows])],
        token: String::new(),
    };
    std::fs::create_dir_all(&warehouse).unwrap();
    let url = format!("file://{}", warehouse.display());
    let written = sluice_warehouse::Warehouse::open(&url, Default::default()).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(written.commit(&segment)).unwrap();
    let before = modes(&warehouse);

    let output = refused_start(sluice(data.path()).args(["serve", "--listen", "127.0.0.1:0"]));
    assert!(!output.status.success());
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        err.trim_end().ends_with(
            "error: plugin patients@0.1.0 (bundled:patients.wasm) cannot write to this warehouse: table `patients`: \
             incompatible schema change: column `patientid` changed from Int64 to Utf8; drop in the plugin version \
             that wrote the table, or give this server a new warehouse (warehouse.url)"
        ),
        "{err}"
    );
    assert!(String::from_utf8_lossy(&output.stdout).is_empty(), "nothing was served");
    assert_eq!(modes(&warehouse), before, "the warehouse is left as it was");

    // A plugin author's check of the file says so before it is dropped in.
    let file = format!("{}/patients.wasm", sluice_plugin_artifacts::PLUGINS_DIR);
    let (ok, _, err) = admin(data.path(), &["plugin", "check", &file], None);
    assert!(!ok);
    assert_eq!(
        err.trim_end(),
        "error: the server on this data directory would not load plugin patients@0.1.0: table `patients`: \
         incompatible schema change: column `patientid` changed from Int64 to Utf8"
    );
    // `plugin list` lists what a server here would run: not the plugin it refuses.
    let (ok, out, err) = admin(data.path(), &["plugin", "list", "--format", "json"], None);
    assert!(ok, "{err}");
    let listed: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    let names: Vec<&str> = listed.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert!(!names.contains(&"patients") && names.contains(&"admissions"), "{names:?}");
    assert!(
        err.contains(
            "warning: bundled:patients.wasm not loaded: the server on this data directory would not load plugin \
             patients@0.1.0: table `patients`: incompatible schema change"
        ),
        "{err}"
    );

    std::fs::remove_dir_all(warehouse.join("patients")).unwrap();
    let server = serving(sluice(data.path()).args(["serve", "--listen", "127.0.0.1:0"]));
    assert!(server.url.starts_with("http://127.0.0.1:"));
}

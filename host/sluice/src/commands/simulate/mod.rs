//! `sluice simulate`: posts records to a running sluice, generated (EMRBots-shaped, seeded) or
//! replayed from files, and reports what happened. Replaces the seed's "API bridge".

mod generate;
mod hl7;
mod mllp;
mod report;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use base64::Engine as _;

use crate::cli::SimulateArgs;
use generate::Generator;
use report::{Outcome, Report};

/// One request to send.
struct Request {
    source: String,
    content_type: &'static str,
    body: String,
    records: u64,
    /// Index into the users, or `None` for an unauthorized request.
    user: Option<usize>,
}

/// Where requests come from.
enum Feed {
    Generated { generator: Generator, sources: Vec<String>, next_source: usize, remaining: Option<u64> },
    Replayed(std::vec::IntoIter<Request>),
}

struct Plan {
    feed: Feed,
    /// Requests planned so far: requests rotate between the users.
    planned: usize,
    rng: fastrand::Rng,
    batch: u64,
    unauthorized_share: f64,
    deadline: Option<Instant>,
}

impl Plan {
    fn next(&mut self) -> Option<Request> {
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            return None;
        }
        if self.unauthorized_share > 0.0 && self.rng.f64() < self.unauthorized_share {
            // The seed's "hacker": a user that does not exist. Its records are never accepted.
            let body = r#"{"PatientID":"00000000-0000-0000-0000-000000000000"}"#.to_string();
            return Some(Request {
                source: "patients".into(),
                content_type: "application/json",
                body,
                records: 1,
                user: None,
            });
        }
        self.planned += 1;
        let user = Some(self.planned);
        match &mut self.feed {
            Feed::Replayed(requests) => requests.next().map(|r| Request { user, ..r }),
            Feed::Generated { generator, sources, next_source, remaining } => {
                let count = match remaining {
                    Some(0) => return None,
                    Some(left) => self.batch.min(*left),
                    None => self.batch,
                };
                if let Some(left) = remaining {
                    *left -= count;
                }
                let source = sources[*next_source % sources.len()].clone();
                *next_source += 1;
                let records: Vec<generate::Record> = (0..count).map(|_| generator.record(&source)).collect();
                let body = serde_json::to_string(&records).expect("records serialize");
                Some(Request { source, content_type: "application/json", body, records: count, user })
            }
        }
    }
}

/// Requests of one file: SOURCE=FILE, CSV/TSV (header repeated in every request), NDJSON, or
/// JSON (an array, its elements sent `batch` at a time as arrays; anything else as one request).
fn replay_requests(source: &str, file: &Path, batch: u64) -> anyhow::Result<Vec<Request>> {
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let extension = file.extension().and_then(|e| e.to_str()).unwrap_or_default().to_ascii_lowercase();
    let (content_type, header) = match extension.as_str() {
        "csv" => ("text/csv", true),
        "tsv" | "tab" => ("text/tab-separated-values", true),
        "ndjson" | "jsonl" => ("application/x-ndjson", false),
        "json" => return json_requests(source, file, text, batch),
        other => anyhow::bail!("{}: unknown file type `.{other}` (use .csv, .tsv, .ndjson or .json)", file.display()),
    };
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let head = if header { Some(lines.next().with_context(|| format!("{} is empty", file.display()))?) } else { None };
    let rows: Vec<&str> = lines.collect();
    Ok(rows
        .chunks(batch.max(1) as usize)
        .map(|chunk| {
            let mut body = head.map(|h| format!("{h}\n")).unwrap_or_default();
            body.push_str(&chunk.join("\n"));
            body.push('\n');
            Request { source: source.to_string(), content_type, body, records: chunk.len() as u64, user: Some(0) }
        })
        .collect())
}

/// Requests of a JSON file: an array's elements `batch` at a time, or the whole document.
fn json_requests(source: &str, file: &Path, text: &str, batch: u64) -> anyhow::Result<Vec<Request>> {
    let document: serde_json::Value =
        serde_json::from_str(text).with_context(|| format!("{} is not JSON", file.display()))?;
    let request = |body: String, records: u64| Request {
        source: source.to_string(),
        content_type: "application/json",
        body,
        records,
        user: Some(0),
    };
    Ok(match document {
        serde_json::Value::Array(elements) => elements
            .chunks(batch.max(1) as usize)
            .map(|chunk| request(serde_json::to_string(chunk).expect("JSON serializes"), chunk.len() as u64))
            .collect(),
        _ => vec![request(text.to_string(), 1)],
    })
}

/// `NAME:PASSWORD` for every `--user`, the passwords from `--password-file`,
/// `--password-stdin` or `SLUICE_PASSWORD` (in that order).
fn credentials(args: &SimulateArgs) -> anyhow::Result<Vec<String>> {
    anyhow::ensure!(!args.users.is_empty(), "give at least one --user NAME");
    if let Some(user) = args.users.iter().find(|u| u.contains(':')) {
        let name = user.split(':').next().unwrap_or_default();
        anyhow::bail!(
            "--user takes a name only (`--user {name}`): a password on the command line is shown to every local \
             user by `ps`; give it in SLUICE_PASSWORD, with --password-stdin or in a --password-file of NAME:PASSWORD lines"
        );
    }
    let mut from_file = std::collections::HashMap::new();
    if let Some(file) = &args.password_file {
        let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (name, password) = line
                .split_once(':')
                .with_context(|| format!("{} line {}: expected NAME:PASSWORD", file.display(), number + 1))?;
            from_file.insert(name.to_string(), password.to_string());
        }
    }
    let shared = if args.password_stdin {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).context("cannot read the password from standard input")?;
        Some(line.trim_end_matches(['\r', '\n']).to_string())
    } else {
        std::env::var("SLUICE_PASSWORD").ok()
    };
    args.users
        .iter()
        .map(|name| {
            let password = from_file.get(name).or(shared.as_ref()).with_context(|| match &args.password_file {
                Some(file) => format!("no password for `{name}` in {}", file.display()),
                None => {
                    format!("no password for `{name}`: set SLUICE_PASSWORD, or use --password-stdin or --password-file")
                }
            })?;
            Ok(format!("{name}:{password}"))
        })
        .collect()
}

/// A progress bar of `total` items (a spinner when unknown), hidden when `quiet`.
fn progress_bar(total: Option<u64>, quiet: bool, unit: &str) -> indicatif::ProgressBar {
    let progress = match total {
        Some(total) if !quiet => indicatif::ProgressBar::new(total),
        _ if !quiet => indicatif::ProgressBar::new_spinner(),
        _ => indicatif::ProgressBar::hidden(),
    };
    progress.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{{elapsed_precise}} [{{bar:40}}] {{pos}}/{{len}} {unit} {{per_sec}} {{msg}}"
        ))
        .expect("valid template")
        .progress_chars("=> "),
    );
    progress
}

/// `simulate --mllp`: HL7 v2 over MLLP.
fn run_mllp(args: &SimulateArgs, address: &str) -> anyhow::Result<()> {
    let seed = args.seed.unwrap_or_else(|| fastrand::u64(..));
    let messages = if args.hl7.is_empty() {
        let remaining = to_generate(args);
        mllp::Messages::Generated { generator: hl7::Hl7Generator::new(seed, fastrand::u64(..)), remaining }
    } else {
        mllp::Messages::Replayed(hl7::replay_messages(&args.hl7)?.into_iter())
    };
    let total = match &messages {
        mllp::Messages::Generated { remaining, .. } => *remaining,
        mllp::Messages::Replayed(messages) => Some(messages.len() as u64),
    };
    let settings = mllp::MllpDrive {
        address: address.to_string(),
        connections: args.connections.max(1),
        rate: args.rate,
        total,
        quiet: args.json,
        timeout: args.timeout,
        retries: args.retries,
        deadline: args.duration.map(|d| Instant::now() + d),
    };
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the runtime")?;
    let report = runtime.block_on(mllp::drive(settings, messages))?;
    print_report(&report, seed, args.json, "messages")
}

/// Runs the simulator.
pub fn run(args: SimulateArgs) -> anyhow::Result<()> {
    if let Some(address) = &args.mllp {
        return run_mllp(&args, address);
    }
    let users = credentials(&args)?;
    anyhow::ensure!((0.0..=1.0).contains(&args.unauthorized_share), "--unauthorized-share must be between 0 and 1");
    anyhow::ensure!((0.0..=1.0).contains(&args.malformed_share), "--malformed-share must be between 0 and 1");
    let seed = args.seed.unwrap_or_else(|| fastrand::u64(..));
    let feed = if args.replay.is_empty() {
        for source in &args.generate {
            anyhow::ensure!(
                generate::SOURCES.contains(&source.as_str()),
                "cannot generate `{source}` (known: {})",
                generate::SOURCES.join(", ")
            );
        }
        let remaining = to_generate(&args);
        Feed::Generated {
            generator: Generator::new(seed, args.malformed_share),
            sources: args.generate.clone(),
            next_source: 0,
            remaining,
        }
    } else {
        let mut requests = Vec::new();
        for (source, file) in &args.replay {
            requests.extend(replay_requests(source, file, args.batch)?);
        }
        Feed::Replayed(requests.into_iter())
    };
    let total = match &feed {
        Feed::Replayed(requests) => Some(requests.as_slice().iter().map(|r| r.records).sum::<u64>()),
        Feed::Generated { remaining, .. } => *remaining,
    };
    let users: Vec<String> =
        users.iter().map(|u| format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(u))).collect();
    let plan = Plan {
        feed,
        planned: 0,
        rng: fastrand::Rng::with_seed(seed ^ 0x5eed),
        batch: args.batch.max(1),
        unauthorized_share: args.unauthorized_share,
        deadline: args.duration.map(|d| Instant::now() + d),
    };
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the runtime")?;
    let settings = Drive {
        urls: args.url.iter().map(|u| u.trim_end_matches('/').to_string()).collect(),
        connections: args.connections.max(1),
        rate: args.rate,
        total,
        quiet: args.json,
        timeout: args.timeout,
        retries: args.retries,
        // Keys are unique to this run: running the simulator again sends new requests.
        run: fastrand::u64(..),
    };
    let report = runtime.block_on(drive(settings, users, plan))?;
    print_report(&report, seed, args.json, "requests")
}

/// How to send the requests.
struct Drive {
    /// The instances to post to, in turn.
    urls: Vec<String>,
    connections: usize,
    rate: u64,
    total: Option<u64>,
    quiet: bool,
    timeout: Duration,
    retries: u32,
    /// Part of every idempotency key of this run.
    run: u64,
}

/// Whether a request that got `status` may be sent again under its key.
fn worth_retrying(status: u16) -> bool {
    matches!(status, 409 | 429 | 502 | 503 | 504)
}

async fn drive(settings: Drive, users: Vec<String>, plan: Plan) -> anyhow::Result<Report> {
    let Drive { urls, connections, rate, total, quiet, timeout, retries, run } = settings;
    let urls = Arc::new(urls);
    let progress = progress_bar(total, quiet, "records");
    let client = reqwest::Client::builder().timeout(timeout).build()?;
    let sequence = Arc::new(AtomicU64::new(0));
    let plan = Arc::new(Mutex::new(plan));
    let report = Arc::new(Mutex::new(Report::default()));
    let scheduled = Arc::new(AtomicU64::new(0));
    let users = Arc::new(users);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (client, plan, report, scheduled, users, urls, progress, sequence) = (
            client.clone(),
            plan.clone(),
            report.clone(),
            scheduled.clone(),
            users.clone(),
            urls.clone(),
            progress.clone(),
            sequence.clone(),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let Some(request) = plan.lock().unwrap_or_else(|e| e.into_inner()).next() else { return };
                if rate > 0 {
                    // Pace to the target rate: this request's records are due at scheduled/rate.
                    let before = scheduled.fetch_add(request.records, Ordering::SeqCst);
                    let due = started + Duration::from_secs_f64(before as f64 / rate as f64);
                    tokio::time::sleep_until(due.into()).await;
                }
                let auth = match request.user {
                    Some(i) => users[i % users.len()].clone(),
                    None => format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("hacker:letmein")),
                };
                let number = sequence.fetch_add(1, Ordering::Relaxed);
                let key = format!("sim-{run:016x}-{number}");
                let sent = Instant::now();
                let mut attempt = 0;
                let response = loop {
                    let url = &urls[(number as usize + attempt as usize) % urls.len()];
                    let response = client
                        .post(format!("{url}/v1/sources/{}/records", request.source))
                        .header("authorization", &auth)
                        .header("content-type", request.content_type)
                        .header("idempotency-key", &key)
                        .body(request.body.clone())
                        .send()
                        .await;
                    let again = match &response {
                        Ok(response) => worth_retrying(response.status().as_u16()),
                        Err(error) => error.is_timeout() || error.is_connect() || error.is_request(),
                    };
                    if !again || attempt >= retries || request.user.is_none() {
                        break response;
                    }
                    attempt += 1;
                    report.lock().unwrap_or_else(|e| e.into_inner()).retries += 1;
                    tokio::time::sleep(sluice_log::backoff(attempt - 1)).await;
                };
                let outcome = match response {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        if response.headers().contains_key("idempotent-replayed") {
                            report.lock().unwrap_or_else(|e| e.into_inner()).replayed += 1;
                        }
                        let body: serde_json::Value = response.json().await.unwrap_or_default();
                        match status {
                            202 | 422 => Outcome::Answered {
                                accepted: body["accepted"].as_u64().unwrap_or(0),
                                rejected: body["rejected"].as_array().map_or(0, |r| r.len() as u64),
                            },
                            // Refused, or rate-limited after repeated failures: either way not let in.
                            401 | 403 | 429 if request.user.is_none() => Outcome::Unauthorized,
                            status => Outcome::Failed(format!(
                                "HTTP {status}: {}",
                                body["error"]["message"].as_str().unwrap_or("")
                            )),
                        }
                    }
                    // With its causes: "connection refused" is what the sender needs to read.
                    Err(error) => Outcome::Failed(crate::one_message(&anyhow::Error::new(error))),
                };
                progress.inc(request.records);
                report.lock().unwrap_or_else(|e| e.into_inner()).add(
                    &request.source,
                    request.records,
                    sent.elapsed(),
                    outcome,
                );
            }
        }));
    }
    finish(tasks, &progress, report, started).await
}

/// Waits for the sending tasks, then hands back the report they filled, timed from `started`.
async fn finish(
    tasks: Vec<tokio::task::JoinHandle<()>>,
    progress: &indicatif::ProgressBar,
    report: Arc<Mutex<Report>>,
    started: Instant,
) -> anyhow::Result<Report> {
    for task in tasks {
        task.await?;
    }
    progress.finish_and_clear();
    let mut report = Arc::try_unwrap(report)
        .map_err(|_| anyhow::anyhow!("tasks still running"))?
        .into_inner()
        .unwrap_or_else(|e| e.into_inner());
    report.elapsed = started.elapsed();
    Ok(report)
}

/// Prints the report (JSON with `--json`) and fails when any of the `what` failed.
fn print_report(report: &Report, seed: u64, json: bool, what: &str) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(&report.json(seed))?);
    } else {
        println!("{}", report.text(seed));
    }
    anyhow::ensure!(report.errors == 0, "{} {what} failed (see above)", report.errors);
    Ok(())
}

/// How many to generate: `--count`, else unbounded with `--duration`, else 10,000.
fn to_generate(args: &SimulateArgs) -> Option<u64> {
    match (args.count, args.duration) {
        (Some(count), _) => Some(count),
        (None, Some(_)) => None,
        (None, None) => Some(10_000),
    }
}

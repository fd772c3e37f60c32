//! `sluice simulate --mllp ADDRESS`: HL7 v2 messages over MLLP, each connection sending one
//! message at a time and waiting for its acknowledgement (the latency measured). A message that
//! gets no answer (timeout, a cut connection) or an AR saying it was not stored is sent again,
//! with the same control id, so nothing is stored twice.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::hl7::Hl7Generator;
use super::report::{Outcome, Report};

/// What to send.
pub enum Messages {
    /// Generated, seeded: `remaining` messages (none: until the deadline).
    Generated { generator: Hl7Generator, remaining: Option<u64> },
    /// Replayed from files.
    Replayed(std::vec::IntoIter<Vec<u8>>),
}

impl Messages {
    fn next(&mut self) -> Option<Vec<u8>> {
        match self {
            Self::Generated { generator, remaining } => {
                if let Some(left) = remaining {
                    if *left == 0 {
                        return None;
                    }
                    *left -= 1;
                }
                Some(generator.message().into_bytes())
            }
            Self::Replayed(messages) => messages.next(),
        }
    }
}

/// How to send.
pub struct MllpDrive {
    /// The listener.
    pub address: String,
    /// Connections at once.
    pub connections: usize,
    /// Messages per second in all (0: as fast as possible).
    pub rate: u64,
    /// Messages in all, if known (the progress bar's length).
    pub total: Option<u64>,
    /// No progress bar.
    pub quiet: bool,
    /// How long to wait for an acknowledgement.
    pub timeout: Duration,
    /// Times to send a message again.
    pub retries: u32,
    /// Stop generating at this moment.
    pub deadline: Option<Instant>,
}

/// Sends every message and reports what came back.
pub async fn drive(settings: MllpDrive, messages: Messages) -> anyhow::Result<Report> {
    let progress = super::progress_bar(settings.total, settings.quiet, "messages");
    let messages = Arc::new(Mutex::new(messages));
    let report = Arc::new(Mutex::new(Report::default()));
    let settings = Arc::new(settings);
    let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..settings.connections.max(1) {
        let (messages, report, settings, progress, sent) =
            (messages.clone(), report.clone(), settings.clone(), progress.clone(), sent.clone());
        tasks.push(tokio::spawn(async move {
            let mut connection: Option<TcpStream> = None;
            loop {
                if settings.deadline.is_some_and(|d| Instant::now() >= d) {
                    return;
                }
                let Some(message) = messages.lock().unwrap_or_else(|e| e.into_inner()).next() else { return };
                if settings.rate > 0 {
                    let before = sent.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let due = started + Duration::from_secs_f64(before as f64 / settings.rate as f64);
                    tokio::time::sleep_until(due.into()).await;
                }
                let began = Instant::now();
                let mut attempt = 0;
                let outcome = loop {
                    let answer = exchange(&mut connection, &settings, &message).await;
                    let again = match &answer {
                        Ok(msa) => msa.starts_with("MSA|AR|") && msa.contains("not stored, send it again"),
                        Err(_) => true,
                    };
                    if !again || attempt >= settings.retries {
                        break match answer {
                            Ok(msa) if msa.starts_with("MSA|AA|") => Outcome::Answered { accepted: 1, rejected: 0 },
                            Ok(msa) if msa.starts_with("MSA|AE|") || msa.starts_with("MSA|AR|") => {
                                Outcome::Answered { accepted: 0, rejected: 1 }
                            }
                            Ok(msa) => Outcome::Failed(format!("unexpected acknowledgement `{msa}`")),
                            Err(error) => Outcome::Failed(error),
                        };
                    }
                    attempt += 1;
                    report.lock().unwrap_or_else(|e| e.into_inner()).retries += 1;
                    connection = None;
                    tokio::time::sleep(sluice_log::backoff(attempt - 1)).await;
                };
                progress.inc(1);
                report.lock().unwrap_or_else(|e| e.into_inner()).add("mllp", 1, began.elapsed(), outcome);
            }
        }));
    }
    super::finish(tasks, &progress, report, started).await
}

/// Sends one message on the connection (opened if needed) and returns the acknowledgement's MSA.
async fn exchange(connection: &mut Option<TcpStream>, settings: &MllpDrive, message: &[u8]) -> Result<String, String> {
    let work = async {
        if connection.is_none() {
            let stream = TcpStream::connect(&settings.address).await.map_err(|e| format!("cannot connect: {e}"))?;
            let _ = stream.set_nodelay(true);
            *connection = Some(stream);
        }
        let stream = connection.as_mut().expect("connected");
        stream.write_all(&sluice_api::mllp_frame(message)).await.map_err(|e| format!("cannot send: {e}"))?;
        let mut ack = Vec::new();
        let mut chunk = [0u8; 4096];
        while !ack.ends_with(&[0x1C, 0x0D]) {
            let read = stream.read(&mut chunk).await.map_err(|e| format!("cannot read the ACK: {e}"))?;
            if read == 0 {
                return Err("the connection was closed before the ACK".to_string());
            }
            ack.extend_from_slice(&chunk[..read]);
        }
        let text = String::from_utf8_lossy(&ack[1..ack.len() - 2]).into_owned();
        Ok(text.split('\r').find(|s| s.starts_with("MSA|")).unwrap_or_default().to_string())
    };
    match tokio::time::timeout(settings.timeout, work).await {
        Ok(Ok(msa)) => Ok(msa),
        Ok(Err(error)) => {
            *connection = None;
            Err(error)
        }
        Err(_) => {
            *connection = None;
            Err(format!("no ACK within {:?}", settings.timeout))
        }
    }
}

//! The listening side, the same for HTTP and HTTPS: connections are capped in all and per
//! client address, a connection that sends no complete request headers within the header
//! timeout is closed (an idle keep-alive connection as well as a half-sent request), and a
//! shutdown waits for requests in progress for at most the drain time.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum_server::accept::Accept;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use hyper_util::rt::TokioTimer;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::ApiState;

/// Limits on connections. Defaults: headers within 30 s, 1,024 connections (see
/// [`ServerLimits::for_open_files`]), 128 per client address, a 10 s drain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerLimits {
    /// A request's headers must arrive within this; an idle keep-alive connection is closed
    /// after it too.
    pub header_timeout: Duration,
    /// Connections held at once; more are refused (plain HTTP: a 503 and close).
    pub max_connections: usize,
    /// Connections held at once from one client address.
    pub max_connections_per_address: usize,
    /// At shutdown, how long requests in progress may take before their connections are cut.
    pub drain: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(30),
            max_connections: 1024,
            max_connections_per_address: 128,
            drain: Duration::from_secs(10),
        }
    }
}

/// File descriptors kept for everything but client connections (log, warehouse files, Kafka
/// and HDFS sockets, plugins), at least.
const RESERVED_FILES: usize = 256;

impl ServerLimits {
    /// The connection limit that leaves room for sluice's own files under an open-file limit of
    /// `open_files`: a quarter of it (at least 256) is reserved, and at most 8,192 connections.
    pub fn for_open_files(open_files: u64) -> usize {
        let open_files = usize::try_from(open_files).unwrap_or(usize::MAX);
        let reserve = RESERVED_FILES.max(open_files / 4);
        open_files.saturating_sub(reserve).clamp(16, 8192)
    }
}

/// Why a connection was refused.
const REFUSED: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: 105\r\n\r\n{\"error\":{\"code\":\"too_many_connections\",\"message\":\"too many connections; retry on an open connection later\"}}";

/// Counts connections in all and per address.
#[derive(Clone)]
struct Gate {
    total: Arc<Semaphore>,
    per_address: Arc<Mutex<HashMap<IpAddr, usize>>>,
    max_per_address: usize,
}

/// A connection's place under the limits, given back when it closes.
struct Admitted {
    _permit: OwnedSemaphorePermit,
    address: IpAddr,
    per_address: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut counts = self.per_address.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = counts.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.address);
            }
        }
    }
}

impl Gate {
    fn admit(&self, address: IpAddr) -> Option<Admitted> {
        let permit = self.total.clone().try_acquire_owned().ok()?;
        let mut counts = self.per_address.lock().unwrap_or_else(|e| e.into_inner());
        let count = counts.entry(address).or_default();
        if *count >= self.max_per_address {
            return None;
        }
        *count += 1;
        Some(Admitted { _permit: permit, address, per_address: self.per_address.clone() })
    }
}

/// A client connection as the acceptors hand it on: holding its place under the limits
/// (the TCP stream), or bound to send its first byte before a deadline (the outermost stream,
/// TLS or not: hyper's header timeout only starts once it reads a request's first byte, so a
/// client that connects and sends nothing is closed by this one).
pub struct Watched<S> {
    inner: S,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    _admitted: Option<Admitted>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        match &polled {
            Poll::Ready(Ok(())) if buf.filled().len() > before => self.deadline = None,
            Poll::Pending => {
                if let Some(deadline) = self.deadline.as_mut()
                    && deadline.as_mut().poll(cx).is_ready()
                {
                    return Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "no request arrived in time")));
                }
            }
            _ => {}
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Wraps what `inner` accepts in a [`Watched`] with a first-byte deadline.
#[derive(Clone)]
struct FirstByteAcceptor<A> {
    inner: A,
    within: Duration,
}

impl<A, S> Accept<TcpStream, S> for FirstByteAcceptor<A>
where
    A: Accept<TcpStream, S> + Clone + Send + 'static,
    A::Future: Send + 'static,
    A::Stream: Send + 'static,
    A::Service: Send + 'static,
{
    type Stream = Watched<A::Stream>;
    type Service = A::Service;
    type Future = Pin<Box<dyn Future<Output = io::Result<(Self::Stream, A::Service)>> + Send>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let accepted = self.inner.accept(stream, service);
        let within = self.within;
        Box::pin(async move {
            let (inner, service) = accepted.await?;
            let deadline = Some(Box::pin(tokio::time::sleep(within)));
            Ok((Watched { inner, deadline, _admitted: None }, service))
        })
    }
}

/// Admits a connection under the limits, or refuses it.
#[derive(Clone)]
struct LimitAcceptor {
    gate: Gate,
    /// Plain HTTP: a refused client gets a 503 (on TLS it would be noise before the handshake).
    plain: bool,
}

impl<S: Send + 'static> Accept<TcpStream, S> for LimitAcceptor {
    type Stream = Watched<TcpStream>;
    type Service = S;
    type Future = Pin<Box<dyn Future<Output = io::Result<(Watched<TcpStream>, S)>> + Send>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let (gate, plain) = (self.gate.clone(), self.plain);
        Box::pin(async move {
            let address = stream.peer_addr()?.ip();
            let Some(admitted) = gate.admit(address) else {
                metrics::counter!("sluice_connections_refused_total").increment(1);
                if plain {
                    // Best effort and never waiting: the client may not be reading.
                    let _ = stream.try_write(REFUSED);
                }
                return Err(io::Error::other("connection limit reached"));
            };
            // Answers leave at once instead of waiting on Nagle's algorithm for the client's ACK.
            let _ = stream.set_nodelay(true);
            Ok((Watched { inner: stream, deadline: None, _admitted: Some(admitted) }, service))
        })
    }
}

/// Serves `app(state)` on `listener` (HTTPS with `tls`) under `limits` until `shutdown`
/// resolves, then lets requests in progress finish for at most `limits.drain`.
pub async fn serve(
    listener: std::net::TcpListener,
    tls: Option<RustlsConfig>,
    state: ApiState,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    let drain = limits.drain;
    tokio::spawn(async move {
        shutdown.await;
        stopper.graceful_shutdown(Some(drain));
    });
    let acceptor = LimitAcceptor {
        gate: Gate {
            total: Arc::new(Semaphore::new(limits.max_connections.max(1))),
            per_address: Arc::default(),
            max_per_address: limits.max_connections_per_address.max(1),
        },
        plain: tls.is_none(),
    };
    let service = crate::app(state).into_make_service_with_connect_info::<SocketAddr>();
    match tls {
        None => {
            let acceptor = FirstByteAcceptor { inner: acceptor, within: limits.header_timeout };
            let mut server = axum_server::from_tcp(listener).acceptor(acceptor).handle(handle);
            configure(server.http_builder(), &limits);
            server.serve(service).await
        }
        Some(config) => {
            // HTTP/1.1 only, where the header timeout closes idle connections.
            let mut tls_config = (*config.get_inner()).clone();
            tls_config.alpn_protocols = vec![b"http/1.1".to_vec()];
            let config = RustlsConfig::from_config(Arc::new(tls_config));
            let acceptor = RustlsAcceptor::new(config).handshake_timeout(limits.header_timeout).acceptor(acceptor);
            let acceptor = FirstByteAcceptor { inner: acceptor, within: limits.header_timeout };
            let mut server = axum_server::from_tcp(listener).acceptor(acceptor).handle(handle);
            configure(server.http_builder(), &limits);
            server.serve(service).await
        }
    }
}

/// HTTP/1.1 only, answering half-closed connections, with the header timeout (hyper applies it from the moment a connection waits
/// for a request: a new connection, an idle keep-alive one, a half-sent request).
fn configure(
    builder: &mut hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>,
    limits: &ServerLimits,
) {
    let taken =
        std::mem::replace(builder, hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new()));
    *builder = taken.http1_only();
    // A client that half-closes its side once its request is sent still gets the answer.
    builder.http1().timer(TokioTimer::new()).header_read_timeout(limits.header_timeout).half_close(true);
    // hyper answers what passes its own limits (these fields, its ~400 KB read buffer) with an
    // empty 431; the router's limits, below them, answer with the JSON error that says what.
    builder.http1().max_headers(4 * crate::limits::MAX_HEADERS);
}

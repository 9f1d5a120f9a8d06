//! The demo target: a small, fast HTTP/1.1 server (httpbin-style routes plus an in-memory
//! RealWorld "Conduit" API) that load tests, examples and the engine's own tests aim at. It runs
//! on its own OS thread and tokio runtime so one process can host both it and the load generator.

mod conduit;
mod routes;
#[cfg(test)]
mod tests;

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio_rustls::TlsAcceptor;

/// How long `stop()` lets in-flight requests finish before the runtime is torn down under them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);
/// A client that connects and never completes the handshake must not pin a task forever.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Benchmarks open thousands of connections at once; the default backlog would drop SYNs.
const LISTEN_BACKLOG: u32 = 4096;

/// Where and how the demo server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoConfig {
    /// Interface to bind; a name such as "localhost" is resolved and the first usable address wins.
    pub host: String,
    /// 0 lets the OS pick a free port (read it back with [`DemoServer::addr`]).
    pub port: u16,
    /// Serve HTTPS with a freshly generated self-signed certificate.
    pub tls: bool,
    /// Tokio worker threads; 1 runs everything on the server's own thread.
    pub threads: usize,
    /// Freeze every response for `Stall::freeze` once every `Stall::period`, as a server stalled by
    /// a garbage collection or a lock would: the scene for coordinated omission.
    pub stall: Option<Stall>,
}

/// A periodic freeze: in each `period` (counted from the server's start), the first `freeze` holds
/// every response until it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stall {
    pub period: Duration,
    pub freeze: Duration,
}

impl Stall {
    /// How long a response ready at `since_start` must wait: until the end of the current
    /// freeze, or not at all between freezes.
    pub fn hold(&self, since_start: Duration) -> Duration {
        if self.period.is_zero() {
            return Duration::ZERO;
        }
        let into = Duration::from_nanos((since_start.as_nanos() % self.period.as_nanos()) as u64);
        self.freeze.saturating_sub(into)
    }
}

impl Default for DemoConfig {
    fn default() -> Self {
        DemoConfig {
            host: "127.0.0.1".to_string(),
            port: 0,
            tls: false,
            threads: 1,
            stall: None,
        }
    }
}

/// A running demo server. Dropping it (or calling [`DemoServer::stop`]) shuts it down.
#[derive(Debug)]
pub struct DemoServer {
    addr: SocketAddr,
    url: String,
    cert_pem: Option<String>,
    stop_tx: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    /// Requests answered so far (any route), for checking a load generator's counts at the target.
    served: Arc<AtomicU64>,
}

impl DemoServer {
    /// Binds, then serves on a dedicated OS thread with its own tokio runtime; returns once the
    /// socket is listening.
    pub fn start(config: DemoConfig) -> io::Result<DemoServer> {
        // Resolve before spawning so a bad host name fails fast with the resolver's own error.
        let candidates: Vec<SocketAddr> = (config.host.as_str(), config.port)
            .to_socket_addrs()?
            .collect();
        if candidates.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::AddrNotAvailable,
                format!("{:?} resolved to no address", config.host),
            ));
        }
        let (acceptor, cert_pem) = if config.tls {
            let (acceptor, pem) = tls_acceptor()?;
            (Some(acceptor), Some(pem))
        } else {
            (None, None)
        };
        let threads = config.threads.max(1);
        let tls = config.tls;
        let (stop_tx, stop_rx) = oneshot::channel();
        let served = Arc::new(AtomicU64::new(0));
        let counter = served.clone();
        let stall = config.stall;
        let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel::<io::Result<SocketAddr>>(1);

        // The runtime is created and dropped on the server thread: building it here would mean
        // dropping it here on an error path, which panics when the caller is itself async.
        let thread = std::thread::Builder::new()
            .name("horde-demo".to_string())
            .spawn(move || {
                let rt = match build_runtime(threads) {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let listener = match rt.block_on(bind(&candidates)) {
                    Ok(l) => l,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let addr = match listener.local_addr() {
                    Ok(a) => a,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let state = Arc::new(State::new(tls, addr, counter, stall));
                let _ = ready_tx.send(Ok(addr));
                rt.block_on(accept_loop(listener, acceptor, state, stop_rx));
            })?;

        match ready_rx.recv() {
            Ok(Ok(addr)) => {
                let scheme = if tls { "https" } else { "http" };
                Ok(DemoServer {
                    addr,
                    url: format!("{scheme}://{addr}"),
                    cert_pem,
                    stop_tx: Some(stop_tx),
                    thread: Some(thread),
                    served,
                })
            }
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => {
                let _ = thread.join();
                Err(io::Error::other("demo server thread exited during startup"))
            }
        }
    }

    /// The address actually bound (the real port when the config asked for 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Base URL, e.g. "http://127.0.0.1:8080" or "https://127.0.0.1:8443".
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// Requests the server has received so far, whatever their route or outcome.
    pub fn requests_served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }

    /// The self-signed certificate (PEM) when serving TLS, for clients to trust.
    pub fn cert_pem(&self) -> Option<&str> {
        self.cert_pem.as_deref()
    }

    /// Stops accepting, lets in-flight requests finish briefly, ends the runtime thread and joins it.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(tx) = self.stop_tx.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for DemoServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Blocks serving until the process is killed; prints nothing itself. Returns only if the server
/// could not start or its thread died.
pub fn serve_forever(config: DemoConfig) -> io::Result<()> {
    let mut server = DemoServer::start(config)?;
    // The stop sender stays alive inside `server`, so this join only returns if the thread dies.
    if let Some(thread) = server.thread.take() {
        let _ = thread.join();
    }
    Err(io::Error::other("demo server thread exited unexpectedly"))
}

/// Shared by every connection of one server.
struct State {
    tls: bool,
    addr: SocketAddr,
    served: Arc<AtomicU64>,
    stall: Option<Stall>,
    started: std::time::Instant,
    http: http1::Builder,
    store: conduit::Store,
}

impl State {
    fn new(tls: bool, addr: SocketAddr, served: Arc<AtomicU64>, stall: Option<Stall>) -> State {
        let mut http = http1::Builder::new();
        // Pipelined benchmarks (wrk scripts) get their responses batched into fewer writes.
        http.keep_alive(true).pipeline_flush(true);
        State {
            tls,
            addr,
            served,
            stall,
            started: std::time::Instant::now(),
            http,
            store: conduit::Store::new(),
        }
    }
}

fn build_runtime(threads: usize) -> io::Result<tokio::runtime::Runtime> {
    let mut builder = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(threads);
        b
    };
    builder
        .enable_io()
        .enable_time()
        .thread_name("horde-demo-worker")
        .build()
}

async fn bind(candidates: &[SocketAddr]) -> io::Result<TcpListener> {
    let mut last_err = None;
    for addr in candidates {
        let attempt = (|| {
            let socket = if addr.is_ipv4() {
                TcpSocket::new_v4()?
            } else {
                TcpSocket::new_v6()?
            };
            // Restarting on a fixed port right after a run must not fail on TIME_WAIT sockets.
            socket.set_reuseaddr(true)?;
            socket.bind(*addr)?;
            socket.listen(LISTEN_BACKLOG)
        })();
        match attempt {
            Ok(listener) => return Ok(listener),
            Err(e) => last_err = Some(e),
        }
    }
    Err(last_err.unwrap_or_else(|| io::Error::other("no address to bind")))
}

fn tls_acceptor() -> io::Result<(TlsAcceptor, String)> {
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

    let names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    let certified = rcgen::generate_simple_self_signed(names).map_err(io::Error::other)?;
    let cert_der = certified.cert.der().clone();
    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_no_client_auth()
        .with_single_cert(vec![cert_der], key_der)
        .map_err(io::Error::other)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((TlsAcceptor::from(Arc::new(config)), certified.cert.pem()))
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: Option<TlsAcceptor>,
    state: Arc<State>,
    mut stop: oneshot::Receiver<()>,
) {
    // Every connection task holds a receiver: the sender's `closed()` then tells us when all
    // of them are gone, without a separate counter.
    let (conns, _) = watch::channel(false);
    loop {
        let accepted = tokio::select! {
            biased;
            _ = &mut stop => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning on accept.
                if !matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionAborted
                        | io::ErrorKind::ConnectionReset
                        | io::ErrorKind::Interrupted
                ) {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let shutdown = conns.subscribe();
        let acceptor = acceptor.clone();
        let state = state.clone();
        tokio::spawn(connection(stream, peer, acceptor, state, shutdown));
    }
    drop(listener);
    conns.send_replace(true);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, conns.closed()).await;
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    acceptor: Option<TlsAcceptor>,
    state: Arc<State>,
    mut shutdown: watch::Receiver<bool>,
) {
    match acceptor {
        None => serve_http(stream, peer, state, shutdown).await,
        Some(acceptor) => {
            let handshake = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream));
            let tls = tokio::select! {
                done = handshake => match done {
                    Ok(Ok(tls)) => tls,
                    _ => return,
                },
                _ = shutdown.changed() => return,
            };
            serve_http(tls, peer, state, shutdown).await
        }
    }
}

async fn serve_http<I>(
    io: I,
    peer: SocketAddr,
    state: Arc<State>,
    mut shutdown: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let handler_state = state.clone();
    let service = service_fn(move |req| {
        let state = handler_state.clone();
        async move {
            let response = CatchPanic(std::pin::pin!(routes::handle(req, state, peer)))
                .await
                .unwrap_or_else(|()| routes::internal_error());
            Ok::<_, Infallible>(response)
        }
    });
    let conn = state.http.serve_connection(TokioIo::new(io), service);
    let mut conn = std::pin::pin!(conn);
    // Connection errors (resets, garbage requests, timeouts) only concern that client.
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = shutdown.changed() => {}
    }
    conn.as_mut().graceful_shutdown();
    let _ = conn.await;
}

/// Turns a panicking handler into an `Err` so the connection can still answer with a 500.
/// Works on a pinned reference, which keeps it free of unsafe pin projection.
struct CatchPanic<'a, F>(Pin<&'a mut F>);

impl<F: Future> Future for CatchPanic<'_, F> {
    type Output = Result<F::Output, ()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.get_mut().0.as_mut();
        match std::panic::catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Ready(out)) => Poll::Ready(Ok(out)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(_) => Poll::Ready(Err(())),
        }
    }
}

/// 64 KiB of the repeating pattern 0, 1, ..., 255; `/bytes` slices it so any size is served
/// without allocating, and chunk boundaries never break the pattern (64 KiB is a multiple of 256).
static PATTERN: [u8; PATTERN_LEN] = {
    let mut buf = [0u8; PATTERN_LEN];
    let mut i = 0;
    while i < PATTERN_LEN {
        buf[i] = (i % 256) as u8;
        i += 1;
    }
    buf
};
const PATTERN_LEN: usize = 64 * 1024;

/// Response body: either one ready buffer or the `/bytes` pattern streamed in 64 KiB frames.
/// The exact size hint lets hyper send Content-Length rather than chunked encoding.
enum DemoBody {
    Full(Option<Bytes>),
    Pattern(u64),
}

impl DemoBody {
    fn full(bytes: Bytes) -> DemoBody {
        if bytes.is_empty() {
            DemoBody::Full(None)
        } else {
            DemoBody::Full(Some(bytes))
        }
    }

    fn pattern(len: u64) -> DemoBody {
        if len <= PATTERN_LEN as u64 {
            DemoBody::full(Bytes::from_static(&PATTERN[..len as usize]))
        } else {
            DemoBody::Pattern(len)
        }
    }
}

impl Body for DemoBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            DemoBody::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            DemoBody::Pattern(remaining) => {
                if *remaining == 0 {
                    return Poll::Ready(None);
                }
                let n = (*remaining).min(PATTERN_LEN as u64);
                *remaining -= n;
                let chunk = Bytes::from_static(&PATTERN[..n as usize]);
                Poll::Ready(Some(Ok(Frame::data(chunk))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, DemoBody::Full(None) | DemoBody::Pattern(0))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            DemoBody::Full(None) => SizeHint::with_exact(0),
            DemoBody::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            DemoBody::Pattern(n) => SizeHint::with_exact(*n),
        }
    }
}

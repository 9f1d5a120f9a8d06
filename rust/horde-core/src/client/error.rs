//! Every way a request can fail, as one error type. A failure is data (the run records it and goes
//! on), so each error says what happened in words; what Locust calls it is `locust.rs`'s business.

use std::fmt;
use std::time::Duration;

/// What went wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The URL cannot be requested (scheme, host, port, a redirect's Location).
    InvalidUrl,
    /// A header name or value would break the request's framing, or a cookie cannot be parsed.
    InvalidHeader,
    ConnectRefused,
    ConnectTimeout,
    /// Any other failure while connecting (DNS, unreachable network, ...).
    Connect,
    Reset,
    ReadTimeout,
    TotalTimeout,
    Tls,
    /// The server's answer is not valid HTTP/1.x, or ended early.
    Protocol,
    TooManyRedirects,
    Decode,
    /// The proxy refused to open a tunnel to the origin (its answer to CONNECT was not 2xx).
    ProxyTunnel,
    /// A bug in the engine (a panic while running the request), reported as a failed request.
    Internal,
}

#[derive(Clone, Debug)]
pub struct ClientError {
    pub kind: ErrorKind,
    pub message: String,
    /// Time from the start of the request to the failure.
    pub elapsed: Duration,
    /// The failure was in reaching or using a proxy rather than the origin (requests then raises
    /// its ProxyError).
    pub via_proxy: bool,
}

impl ClientError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ClientError {
            kind,
            message: message.into(),
            elapsed: Duration::ZERO,
            via_proxy: false,
        }
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.message)
    }
}

impl std::error::Error for ClientError {}

pub(crate) fn from_io(e: &std::io::Error, connecting: bool) -> ClientError {
    use std::io::ErrorKind as K;
    // TLS failures reach us as io::Errors wrapping a rustls::Error.
    if let Some(inner) = e.get_ref() {
        if let Some(tls) = inner.downcast_ref::<rustls::Error>() {
            return ClientError::new(ErrorKind::Tls, format!("TLS error: {tls}"));
        }
    }
    match e.kind() {
        K::ConnectionRefused => ClientError::new(ErrorKind::ConnectRefused, "Connection refused"),
        K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe => {
            ClientError::new(ErrorKind::Reset, "Connection reset by peer")
        }
        K::TimedOut if connecting => ClientError::new(ErrorKind::ConnectTimeout, e.to_string()),
        K::UnexpectedEof => ClientError::new(
            ErrorKind::Protocol,
            "connection closed before the response was complete",
        ),
        _ if connecting => ClientError::new(ErrorKind::Connect, e.to_string()),
        _ => ClientError::new(ErrorKind::Protocol, e.to_string()),
    }
}

/// Seconds as Python prints a float (`0.5`, `3.0`), for the timeout messages requests words.
pub(crate) fn fmt_secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.1}")
    } else {
        format!("{s}")
    }
}

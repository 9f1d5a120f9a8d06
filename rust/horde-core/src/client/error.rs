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

/// The facts behind a failure that Locust's two clients put into their error texts (which
/// `crate::locust` words): the kind alone does not say, for instance, how many bytes of a body
/// had arrived when the connection closed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Cause {
    /// Nothing beyond the kind and the message.
    #[default]
    Unknown,
    /// The host name did not resolve: getaddrinfo's error code (EAI_*) and text.
    Resolve { code: i32, text: String },
    /// No connection within the connect timeout.
    ConnectTimeout { timeout: Duration },
    /// Nothing arrived for the read timeout, while waiting for the head or inside the body.
    ReadTimeout { timeout: Duration, in_body: bool },
    /// The server reset the connection, before the head or inside the body.
    Reset { in_body: bool },
    /// The connection closed before any byte of a response.
    ClosedBeforeResponse,
    /// The connection closed inside the head; `status_line` tells whether its first line was
    /// complete.
    ClosedInHead { status_line: bool },
    /// The first line is not an HTTP/1.x status line: the line as received (bounded), with its
    /// line end if it had one.
    BadStatusLine { line: Vec<u8>, problem: StatusLine },
    /// A header field that is not `name: value`.
    BadHeader,
    /// The head went past the size limit.
    HeadTooLarge,
    /// A Content-Length that is not a number, too large for one, or two that disagree.
    ContentLength(LengthProblem),
    /// The connection closed before a body of `expected` bytes (by Content-Length) was complete.
    BodyIncomplete { read: u64, expected: u64 },
    /// The connection closed inside a chunk's data: `read` bytes of it had come, `more` had not.
    ChunkIncomplete { read: u64, more: u64 },
    /// The connection closed between two chunks, before the last one.
    ChunkedEnded,
    /// A chunk-size line that is not a hexadecimal size: the line with its line end.
    BadChunkSize { line: Vec<u8>, overflow: bool },
    /// A chunk-size line longer than the limit.
    ChunkLineTooLong,
    /// A chunk's data not followed by a line end.
    ChunkDataNotTerminated,
}

/// What is wrong with a status line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusLine {
    /// It does not start with "HTTP/".
    NotHttp,
    /// "HTTP/" and a version other than 1.0 or 1.1; `dot` is false when a digit is followed by
    /// something other than a dot ("HTTP/2").
    Version { dot: bool },
    /// The status is not three digits.
    Status,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LengthProblem {
    /// Not a decimal number.
    Invalid,
    /// More than fits in 64 bits.
    Overflow,
    /// Fields (or list members) with different values: all the fields as received, joined with
    /// ", ".
    Conflicting(String),
}

#[derive(Clone, Debug)]
pub struct ClientError {
    pub kind: ErrorKind,
    pub message: String,
    /// Time from the start of the request to the failure.
    pub elapsed: Duration,
    pub cause: Cause,
    /// The URL being requested when it failed (a redirect's target after a redirect); empty when
    /// the failure came before any URL was requested.
    pub url: String,
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
            cause: Cause::Unknown,
            url: String::new(),
            via_proxy: false,
        }
    }

    pub(crate) fn because(mut self, cause: Cause) -> Self {
        self.cause = cause;
        self
    }

    /// Notes the URL being requested, unless a more precise one is known already.
    pub(crate) fn at(mut self, url: &str) -> Self {
        if self.url.is_empty() {
            self.url = url.to_owned();
        }
        self
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
                .because(Cause::Reset { in_body: false })
        }
        K::TimedOut if connecting => ClientError::new(ErrorKind::ConnectTimeout, e.to_string()),
        K::UnexpectedEof => ClientError::new(
            ErrorKind::Protocol,
            "connection closed before the response was complete",
        )
        .because(Cause::ClosedBeforeResponse),
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

/// A failed name lookup as Python reports it: getaddrinfo's code for the text that Rust's
/// standard library gives (it keeps only `gai_strerror`'s text, glibc's wording of each code).
pub(crate) fn resolve_error(e: &std::io::Error) -> ClientError {
    const CODES: [(i32, &str); 7] = [
        (-2, "Name or service not known"),
        (-3, "Temporary failure in name resolution"),
        (-4, "Non-recoverable failure in name resolution"),
        (-5, "No address associated with hostname"),
        (-8, "Servname not supported for ai_socktype"),
        (-9, "Address family for hostname not supported"),
        (-11, "System error"),
    ];
    let full = e.to_string();
    let text = full
        .strip_prefix("failed to lookup address information: ")
        .unwrap_or(&full);
    let error = ClientError::new(ErrorKind::Connect, full.clone());
    match CODES.iter().find(|(_, known)| *known == text) {
        Some(&(code, known)) => error.because(Cause::Resolve {
            code,
            text: known.to_owned(),
        }),
        None => error,
    }
}

//! Locust's rules, in one place: what a request's result means to Locust (failed or not, under
//! which exception class and with which text in the failures table), the headers a session
//! starts with, and the serialised stats entry that `--json` prints and workers send to their
//! master. The HTTP client (`client/`) knows none of this; the Python side asks here instead of
//! keeping copies of the rules.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

use crate::client::{fmt_secs, Cause, ClientError, ErrorKind, LengthProblem, Response, StatusLine};
use crate::stats::{ErrorEntry, RequestRecord, StatsEntry};

/// The two kinds of Locust HTTP user, whose clients differ in their defaults and in which
/// statuses fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserKind {
    /// `HttpUser` (requests): a status of 400 or more fails.
    HttpUser,
    /// `FastHttpUser` (geventhttpclient): anything but 2xx and the usual redirects fails.
    FastHttpUser,
}

/// The User-Agent horde's sessions send (Locust sends requests' or geventhttpclient's own).
pub const USER_AGENT: &str = concat!("horde/", env!("CARGO_PKG_VERSION"));

/// A failed request as Locust reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The name of the exception class that stands for it, in `horde.exception` (requests' and
    /// Locust's names).
    pub exception: &'static str,
    /// The exception's message: `str(exception)`.
    pub message: String,
    /// The failures table's text for it: Locust's `repr(exception)`.
    pub text: String,
}

/// What a finished request counts as.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    /// The response's status, 0 when there was none.
    pub status: u16,
    pub response_time_ms: f64,
    pub content_length: u64,
    /// None when the request succeeded by the user kind's rules.
    pub failure: Option<Failure>,
}

impl Outcome {
    /// The outcome as the statistics log it under (method, name).
    pub fn record<'a>(&'a self, method: &'a str, name: &'a str) -> RequestRecord<'a> {
        RequestRecord {
            method,
            name,
            response_time_ms: Some(self.response_time_ms),
            content_length: self.content_length,
            error: self.failure.as_ref().map(|f| f.text.as_str()),
            status: self.status,
            service_ms: None,
            own_delay_us: None,
        }
    }
}

impl UserKind {
    /// The headers a new session of this kind sends with every request, in this order: requests'
    /// defaults for HttpUser; for FastHttpUser geventhttpclient's User-Agent and the
    /// Accept-Encoding Locust's FastHttpSession adds. Both of Locust's clients ask for brotli
    /// (requests does when the `brotli` package is installed, which Locust's geventhttpclient
    /// requires). The one difference is the User-Agent, which names horde.
    pub fn default_headers(self) -> &'static [(&'static str, &'static str)] {
        match self {
            UserKind::HttpUser => &[
                ("User-Agent", USER_AGENT),
                ("Accept-Encoding", "gzip, deflate, br"),
                ("Accept", "*/*"),
                ("Connection", "keep-alive"),
            ],
            UserKind::FastHttpUser => &[
                ("User-Agent", USER_AGENT),
                ("Accept-Encoding", "gzip, deflate, br"),
            ],
        }
    }

    /// What a result counts as. `name` is the request's stats name, which Locust's failure
    /// texts use in place of the URL.
    pub fn outcome(self, result: &Result<Response, ClientError>, name: &str) -> Outcome {
        match result {
            Ok(r) => Outcome {
                status: r.status,
                response_time_ms: r.elapsed.as_secs_f64() * 1000.0,
                content_length: r.body.len() as u64,
                failure: self.status_failure(r.status, &r.reason, name),
            },
            Err(e) => Outcome {
                status: 0,
                response_time_ms: e.elapsed.as_secs_f64() * 1000.0,
                content_length: 0,
                failure: Some(self.transport_failure(e)),
            },
        }
    }

    /// The failure a response with this status is, None if this kind of user accepts it. `url`
    /// goes into the message: the stats name when Locust records it, the response's URL when the
    /// user calls `raise_for_status()`.
    pub fn status_failure(self, status: u16, reason: &str, url: &str) -> Option<Failure> {
        match self {
            UserKind::HttpUser => {
                // requests' raise_for_status.
                let side = match status {
                    400..=499 => "Client",
                    500..=599 => "Server",
                    _ => return None,
                };
                let message = format!("{status} {side} Error: {reason} for url: {url}");
                Some(Failure {
                    exception: "HTTPError",
                    text: format!("HTTPError({})", py_repr_str(&message)),
                    message,
                })
            }
            UserKind::FastHttpUser => {
                // geventhttpclient's list of codes that are not errors, as Locust configures it;
                // Locust's repr of the error leaves the URL out (the stats row names it).
                if matches!(status, 200..=208 | 226 | 301 | 302 | 303 | 304 | 307 | 308) {
                    return None;
                }
                Some(Failure {
                    exception: "HTTPError",
                    message: format!("{status} {reason} for url: {url}"),
                    text: format!("LocustBadStatusCode(code={status})"),
                })
            }
        }
    }
}

impl UserKind {
    /// A request that got no usable response, as this kind of user's Locust client records it:
    /// requests' exception class, and the text of the exception Locust keeps. HttpUser's Locust
    /// unwraps requests' ConnectionError down to its cause (the OS error for a refused or reset
    /// connection, urllib3's for a connect timeout); FastHttpUser's records geventhttpclient's
    /// errors and llhttp's parse errors as they are. A failure that Locust's client does not have
    /// (it accepts the response, or has no such limit) keeps horde's own words.
    pub fn transport_failure(self, e: &ClientError) -> Failure {
        if e.via_proxy {
            return proxy_failure(e);
        }
        let fast = self == UserKind::FastHttpUser;
        let known = if fast {
            fast_http_text(e)
        } else {
            http_user_text(e)
        };
        let (exception, text) = known.unwrap_or_else(|| {
            let exception = exception_of(e.kind);
            (
                exception,
                format!("{exception}({})", py_repr_str(&e.message)),
            )
        });
        Failure {
            exception,
            message: e.message.clone(),
            text,
        }
    }
}

/// A failure in reaching or using a proxy: requests raises ProxyError for whatever went wrong on
/// the way to the origin, which Locust unwraps to the OS error, or for a refused tunnel to the
/// OSError urllib3 raised for the proxy's answer.
fn proxy_failure(e: &ClientError) -> Failure {
    let text = match e.kind {
        ErrorKind::ConnectRefused => REFUSED.to_owned(),
        ErrorKind::Reset => RESET.to_owned(),
        ErrorKind::ProxyTunnel => format!("OSError({})", py_repr_str(&e.message)),
        _ => format!("ProxyError({})", py_repr_str(&e.message)),
    };
    Failure {
        exception: "ProxyError",
        message: e.message.clone(),
        text,
    }
}

/// requests' exception class for a kind of failure (`horde.exception` has each).
fn exception_of(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidUrl => "InvalidURL",
        ErrorKind::InvalidHeader => "InvalidHeader",
        ErrorKind::ConnectTimeout => "ConnectTimeout",
        ErrorKind::ReadTimeout => "ReadTimeout",
        ErrorKind::TotalTimeout => "Timeout",
        ErrorKind::Tls => "SSLError",
        ErrorKind::TooManyRedirects => "TooManyRedirects",
        ErrorKind::Decode => "ContentDecodingError",
        ErrorKind::ConnectRefused
        | ErrorKind::Connect
        | ErrorKind::Reset
        | ErrorKind::Protocol
        | ErrorKind::ProxyTunnel
        | ErrorKind::Internal => "ConnectionError",
    }
}

const REFUSED: &str = "ConnectionRefusedError(111, 'Connection refused')";
const RESET: &str = "ConnectionResetError(104, 'Connection reset by peer')";

/// The text both clients share: the OS's and the resolver's errors, which both let through.
fn shared_text(e: &ClientError) -> Option<(&'static str, String)> {
    if e.kind == ErrorKind::ConnectRefused {
        return Some(("ConnectionError", REFUSED.to_owned()));
    }
    match &e.cause {
        Cause::Resolve { code, text } => Some((
            "ConnectionError",
            format!("gaierror({code}, {})", py_repr_str(text)),
        )),
        _ => None,
    }
}

/// HttpUser's text: requests' and urllib3's exceptions, after Locust's unwrapping.
fn http_user_text(e: &ClientError) -> Option<(&'static str, String)> {
    if let Some(shared) = shared_text(e) {
        return Some(shared);
    }
    // urllib3 reads a body through requests' iter_content, which wraps its errors so.
    let broken = |inner: String| {
        let message = py_repr_str(&format!("Connection broken: {inner}"));
        (
            "ChunkedEncodingError",
            format!("ChunkedEncodingError(ProtocolError({message}, {inner}))"),
        )
    };
    let ended = |what: &str| {
        (
            "ChunkedEncodingError",
            format!("ChunkedEncodingError(ProtocolError({}))", py_repr_str(what)),
        )
    };
    Some(match &e.cause {
        Cause::Reset { in_body: false } => ("ConnectionError", RESET.to_owned()),
        Cause::Reset { in_body: true } => broken(RESET.to_owned()),
        Cause::ConnectTimeout { timeout } => {
            let (https, host, port) = pool_of(&e.url)?;
            let class = if https {
                "HTTPSConnection"
            } else {
                "HTTPConnection"
            };
            let message = format!(
                "Connection to {host} timed out. (connect timeout={})",
                fmt_secs(*timeout)
            );
            // urllib3 names the connection object by its address, which Locust does not mask
            // (it masks only "object at 0x"): every connection would get a row of its own.
            (
                "ConnectTimeout",
                format!(
                    "ConnectTimeoutError(<{class}(host={}, port={port}) at 0x....>, {})",
                    py_repr_str(&host),
                    py_repr_str(&message)
                ),
            )
        }
        Cause::ReadTimeout { timeout, in_body } => {
            let (https, host, port) = pool_of(&e.url)?;
            let pool = if https {
                "HTTPSConnectionPool"
            } else {
                "HTTPConnectionPool"
            };
            let pool = format!("{pool}(host={}, port={port})", py_repr_str(&host));
            if *in_body {
                // Raised while reading the body: requests turns it into a ConnectionError,
                // which Locust unwraps.
                let message = format!("{pool}: Read timed out.");
                (
                    "ConnectionError",
                    format!("ReadTimeoutError({})", py_repr_str(&message)),
                )
            } else {
                let message = format!(
                    "{pool}: Read timed out. (read timeout={})",
                    fmt_secs(*timeout)
                );
                (
                    "ReadTimeout",
                    format!("ReadTimeout(ReadTimeoutError({}))", py_repr_str(&message)),
                )
            }
        }
        Cause::ClosedBeforeResponse | Cause::ClosedInHead { .. } => (
            "ConnectionError",
            "RemoteDisconnected('Remote end closed connection without response')".to_owned(),
        ),
        Cause::BadStatusLine { line, problem } => {
            // http.client decodes the status line as latin-1.
            let text: String = line.iter().map(|&b| b as char).collect();
            match problem {
                StatusLine::Version { .. } => {
                    let version = text.split_whitespace().next().unwrap_or("");
                    (
                        "ConnectionError",
                        format!("UnknownProtocol({})", py_repr_str(version)),
                    )
                }
                StatusLine::NotHttp | StatusLine::Status => (
                    "ConnectionError",
                    format!("BadStatusLine({})", py_repr_str(&text)),
                ),
            }
        }
        Cause::ContentLength(LengthProblem::Conflicting(values)) => {
            let message = format!("Content-Length contained multiple unmatching values ({values})");
            (
                "InvalidHeader",
                format!("InvalidHeader(InvalidHeader({}))", py_repr_str(&message)),
            )
        }
        Cause::BodyIncomplete { read, expected } => broken(format!(
            "IncompleteRead({read} bytes read, {} more expected)",
            expected - read
        )),
        Cause::ChunkIncomplete { read, more } => {
            // requests reads a body in pieces of 10 KiB, and urllib3 reads a chunk's data a piece
            // at a time: the error counts within the piece that broke off, not the chunk.
            const PIECE: u64 = 10 * 1024;
            let start = read / PIECE * PIECE;
            let asked = PIECE.min(read + more - start);
            let got = read - start;
            broken(format!(
                "IncompleteRead({got} bytes read, {} more expected)",
                asked - got
            ))
        }
        Cause::ChunkedEnded => ended("Response ended prematurely"),
        // urllib3 counts "bytes read" with tell(), which stays 0 while it reads chunks.
        Cause::BadChunkSize { line, .. } => broken(format!(
            "InvalidChunkLength(got length {}, 0 bytes read)",
            py_repr_bytes(line)
        )),
        Cause::ChunkLineTooLong => {
            ended("Response chunk size line exceeded maximum allowed length")
        }
        _ => return None,
    })
}

/// FastHttpUser's text: geventhttpclient's exceptions and llhttp's parse errors (message and
/// error number).
fn fast_http_text(e: &ClientError) -> Option<(&'static str, String)> {
    if let Some(shared) = shared_text(e) {
        return Some(shared);
    }
    let parse = |message: &str, code: Option<u8>| {
        let text = match code {
            Some(code) => format!("HTTPParseError({}, {code})", py_repr_str(message)),
            None => format!("HTTPParseError({})", py_repr_str(message)),
        };
        ("ConnectionError", text)
    };
    const CLOSED: &str = "HTTPConnectionClosed('connection closed.')";
    Some(match &e.cause {
        Cause::Reset { in_body: false } | Cause::ClosedBeforeResponse => {
            ("ConnectionError", CLOSED.to_owned())
        }
        Cause::Reset { in_body: true } => ("ConnectionError", RESET.to_owned()),
        // Locust's FastHttpSession retries nothing: the user agent gives up after attempt 0.
        Cause::ConnectTimeout { .. } | Cause::ReadTimeout { in_body: false, .. } => (
            exception_of(e.kind),
            format!(
                "RetriesExceeded({}, 0, original=timed out)",
                py_repr_str(&e.url)
            ),
        ),
        Cause::ReadTimeout { in_body: true, .. } => {
            ("ReadTimeout", "TimeoutError('timed out')".to_owned())
        }
        Cause::ClosedInHead { status_line: true } => parse("Invalid EOF state", Some(14)),
        Cause::ClosedInHead { status_line: false } => {
            parse("connection closed before end of the headers", None)
        }
        Cause::BadStatusLine { problem, .. } => match problem {
            StatusLine::NotHttp => parse("Expected HTTP/, RTSP/ or ICE/", Some(8)),
            StatusLine::Version { dot: false } => parse("Expected dot", Some(9)),
            StatusLine::Version { dot: true } => parse("Invalid HTTP version", Some(9)),
            StatusLine::Status => parse("Invalid status code", Some(13)),
        },
        Cause::BadHeader => parse("Invalid header token", Some(10)),
        Cause::ContentLength(problem) => match problem {
            LengthProblem::Invalid => parse("Invalid character in Content-Length", Some(11)),
            LengthProblem::Overflow => parse("Content-Length overflow", Some(11)),
            LengthProblem::Conflicting(_) => parse("Duplicate Content-Length", Some(4)),
        },
        Cause::BodyIncomplete { .. } | Cause::ChunkIncomplete { .. } | Cause::ChunkedEnded => {
            parse("Incomplete response.", None)
        }
        Cause::BadChunkSize { overflow: true, .. } => parse("Chunk size overflow", Some(12)),
        Cause::BadChunkSize {
            overflow: false, ..
        } => parse("Invalid character in chunk size", Some(12)),
        Cause::ChunkDataNotTerminated => parse("Expected LF after chunk data", Some(2)),
        _ => return None,
    })
}

/// Scheme, host (IPv6 without brackets) and port of a URL, as urllib3's pools name them.
fn pool_of(url: &str) -> Option<(bool, String, u16)> {
    let url = url::Url::parse(url).ok()?;
    let host = url
        .host_str()?
        .trim_start_matches('[')
        .trim_end_matches(']');
    Some((
        url.scheme() == "https",
        host.to_owned(),
        url.port_or_known_default()?,
    ))
}

/// Python's `repr()` of bytes: `b'...'`, printable ASCII as it is, the rest escaped.
pub fn py_repr_bytes(b: &[u8]) -> String {
    let quote = if b.contains(&b'\'') && !b.contains(&b'"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(b.len() + 3);
    out.push('b');
    out.push(quote);
    for &c in b {
        match c {
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            c if c as char == quote => {
                out.push('\\');
                out.push(c as char);
            }
            0x20..=0x7e => out.push(c as char),
            c => out.push_str(&format!("\\x{c:02x}")),
        }
    }
    out.push(quote);
    out
}

/// Python's `repr()` of a str: single quotes unless the text has one and no double quote.
pub fn py_repr_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            // Python's repr escapes what it does not print: C0 and C1 controls, NBSP, soft hyphen.
            c if (c as u32) < 0x20 || (0x7f..=0xa0).contains(&(c as u32)) || c == '\u{ad}' => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Locust's `--otel` labels at most this many distinct request names in its duration histogram
/// (`MAX_REQUEST_NAMES` in `locust/opentelemetry.py`); later names share `OTEL_TOO_MANY_NAMES`.
pub const MAX_OTEL_REQUEST_NAMES: usize = 20;
pub const OTEL_TOO_MANY_NAMES: &str = "Too many unique request names";

/// The `error.type` of a failure, from its failures-table text: Locust's `--otel` labels a failed
/// request with `exception.__class__.__name__`, and the text is that exception's `repr()`, which
/// starts with the class name and a parenthesis. A text of another shape was a plain string
/// given as the failure, which Locust labels "str".
pub fn error_type(text: &str) -> &str {
    let end = text
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    let name = &text[..end];
    let starts_like_a_name = name.chars().next().is_some_and(|c| !c.is_ascii_digit());
    if starts_like_a_name && text[end..].starts_with('(') {
        name
    } else {
        "str"
    }
}

/// Locust's `StatsEntryDict`: a stats entry as `StatsEntry.serialize()` gives it, which `--json`
/// prints and a worker sends to its master. Response times travel in Locust's rounded-ms
/// buckets. Reading is lenient where Python is loose: counts and bucket keys may come as
/// integral floats, the method as null.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EntryDict {
    pub name: String,
    #[serde(deserialize_with = "text_or_null")]
    pub method: String,
    pub last_request_timestamp: Option<f64>,
    pub start_time: f64,
    #[serde(default, deserialize_with = "count")]
    pub num_requests: u64,
    #[serde(default, deserialize_with = "count")]
    pub num_none_requests: u64,
    #[serde(default, deserialize_with = "count")]
    pub num_failures: u64,
    pub total_response_time: f64,
    pub max_response_time: f64,
    pub min_response_time: Option<f64>,
    #[serde(default, deserialize_with = "count")]
    pub total_content_length: u64,
    #[serde(default, deserialize_with = "count_map")]
    pub response_times: BTreeMap<u64, u64>,
    #[serde(default, deserialize_with = "count_map")]
    pub num_reqs_per_sec: BTreeMap<i64, u64>,
    #[serde(default, deserialize_with = "count_map")]
    pub num_fail_per_sec: BTreeMap<i64, u64>,
    /// horde's addition: the exact histogram's recorded buckets as a flat list (µs value, count,
    /// value, count, ...), which a horde master merges instead of `response_times`; Locust's
    /// master ignores keys it does not know. Buckets, not an encoded histogram: merging them
    /// costs a step per bucket, where decoding and adding a histogram walks all its slots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hdr_buckets: Option<Vec<u64>>,
}

impl From<&StatsEntry> for EntryDict {
    fn from(e: &StatsEntry) -> Self {
        EntryDict {
            name: e.name.clone(),
            method: e.method.clone(),
            last_request_timestamp: e.last_request_timestamp,
            start_time: e.start_time,
            num_requests: e.num_requests,
            num_none_requests: e.num_none_requests,
            num_failures: e.num_failures,
            total_response_time: e.total_response_time,
            max_response_time: e.max_response_time,
            min_response_time: e.min_response_time,
            total_content_length: e.total_content_length,
            response_times: e.to_locust_response_times(),
            num_reqs_per_sec: e.num_reqs_per_sec.clone(),
            num_fail_per_sec: e.num_fail_per_sec.clone(),
            hdr_buckets: None,
        }
    }
}

impl EntryDict {
    /// The dict with the entry's exact histogram added (what a horde worker sends).
    pub fn with_histogram(e: &StatsEntry) -> Self {
        EntryDict {
            hdr_buckets: Some(flat_buckets(e.histogram())),
            ..EntryDict::from(e)
        }
    }

    /// The entry it describes (see `merge_into`).
    pub fn to_entry(&self) -> StatsEntry {
        let mut e = StatsEntry::new_at(&self.name, &self.method, self.start_time);
        self.merge_into(&mut e);
        e
    }

    /// Adds what it describes to `e`, as Locust's `StatsEntry.extend` does. With `hdr_buckets`
    /// (from a horde worker) the response times are exact; without (from a Locust worker) they
    /// are known only by bucket, so each bucket's count is recorded at the bucket's value. Min,
    /// max and the average are exact either way.
    pub fn merge_into(&self, e: &mut StatsEntry) {
        e.last_request_timestamp = match (e.last_request_timestamp, self.last_request_timestamp) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        e.start_time = e.start_time.min(self.start_time);
        e.num_requests += self.num_requests;
        e.num_none_requests += self.num_none_requests;
        e.num_failures += self.num_failures;
        e.total_response_time += self.total_response_time;
        e.max_response_time = e.max_response_time.max(self.max_response_time);
        e.min_response_time = match (e.min_response_time, self.min_response_time) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        e.total_content_length += self.total_content_length;
        for (&sec, &n) in &self.num_reqs_per_sec {
            *e.num_reqs_per_sec.entry(sec).or_insert(0) += n;
        }
        for (&sec, &n) in &self.num_fail_per_sec {
            *e.num_fail_per_sec.entry(sec).or_insert(0) += n;
        }
        match &self.hdr_buckets {
            Some(flat) => {
                for pair in flat.chunks_exact(2) {
                    e.record_us(pair[0], pair[1]);
                }
            }
            None => {
                for (&bucket_ms, &n) in &self.response_times {
                    e.record_times(bucket_ms as f64, n);
                }
            }
        }
    }
}

/// A row's recorded values as a flat list: µs value, count, value, count, ...
pub fn flat_buckets(h: &crate::latencies::Latencies) -> Vec<u64> {
    let mut out = Vec::new();
    for (value, count) in h.iter() {
        out.push(value);
        out.push(count);
    }
    out
}

/// Locust's `StatsErrorDict`: one row of the failures table, as `StatsError.serialize()` gives it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorDict {
    pub name: String,
    #[serde(deserialize_with = "text_or_null")]
    pub method: String,
    pub error: String,
    #[serde(default, deserialize_with = "count")]
    pub occurrences: u64,
    #[serde(default)]
    pub first_seen: Option<f64>,
    #[serde(default)]
    pub last_seen: Option<f64>,
}

impl ErrorDict {
    /// The error table's row (a missing first or last time is taken as now).
    pub fn to_entry(&self) -> ErrorEntry {
        let now = crate::stats::now_epoch_secs();
        ErrorEntry {
            method: self.method.clone(),
            name: self.name.clone(),
            error: self.error.clone(),
            occurrences: self.occurrences,
            first_seen: self.first_seen.unwrap_or(now),
            last_seen: self.last_seen.or(self.first_seen).unwrap_or(now),
        }
    }
}

/// The stats part of a worker's `stats` message (Locust's report: deltas since the last one).
/// Other keys (`user_classes_count`, a locustfile's own) are read where they are needed.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct WorkerReport {
    #[serde(default)]
    pub stats: Vec<EntryDict>,
    pub stats_total: EntryDict,
    #[serde(default)]
    pub errors: BTreeMap<String, ErrorDict>,
    #[serde(default)]
    pub user_classes_count: Option<BTreeMap<String, i64>>,
    /// horde's addition: the worker's own delay per request since its last report (recorded
    /// buckets as in `EntryDict::hdr_buckets`), which a horde master merges; Locust's ignores it.
    #[serde(default)]
    pub horde_own_delay: Option<Vec<u64>>,
}

/// Decodes a `stats` message (`[type, data, node_id]` in msgpack) into its worker's id and report.
pub fn decode_stats_message(raw: &[u8]) -> Result<(String, WorkerReport), String> {
    match crate::report::read_stats_message(raw) {
        Some(decoded) => Ok(decoded),
        None => serde_stats_message(raw),
    }
}

/// `decode_stats_message` through serde: slower, but it takes every shape Python may send and
/// says what is wrong with the rest.
pub(crate) fn serde_stats_message(raw: &[u8]) -> Result<(String, WorkerReport), String> {
    let (kind, report, node_id): (String, WorkerReport, String) =
        rmp_serde::from_slice(raw).map_err(|e| format!("bad stats message: {e}"))?;
    if kind != "stats" {
        return Err(format!("a {kind:?} message is not a stats report"));
    }
    Ok((node_id, report))
}

fn text_or_null<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

/// A number that Python may have sent as an int, an integral float or (JSON's keys) text: its
/// value when it is a whole number, else None. Read with a visitor of its own rather than an
/// untagged enum, which buffers every value before trying each form (most of a master's
/// decoding time at a thousand workers).
struct Number(Option<f64>);

impl Number {
    fn whole(self) -> Option<f64> {
        self.0
    }

    fn of(f: f64) -> Number {
        Number((f.is_finite() && f.fract() == 0.0).then_some(f))
    }
}

impl<'de> Deserialize<'de> for Number {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;

        impl serde::de::Visitor<'_> for Visitor {
            type Value = Number;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a whole number")
            }

            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Number, E> {
                Ok(Number(Some(v as f64)))
            }

            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Number, E> {
                Ok(Number(Some(v as f64)))
            }

            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Number, E> {
                Ok(Number::of(v))
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Number, E> {
                Ok(v.trim().parse::<f64>().map_or(Number(None), Number::of))
            }
        }

        d.deserialize_any(Visitor)
    }
}

fn count<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    match Option::<Number>::deserialize(d)? {
        None => Ok(0),
        Some(n) => n
            .whole()
            .filter(|f| *f >= 0.0)
            .map(|f| f as u64)
            .ok_or_else(|| serde::de::Error::custom("expected a count")),
    }
}

fn count_map<'de, D, K>(d: D) -> Result<BTreeMap<K, u64>, D::Error>
where
    D: Deserializer<'de>,
    K: TryFrom<i64> + Ord,
{
    struct Counts<K>(std::marker::PhantomData<K>);

    impl<'de, K: TryFrom<i64> + Ord> serde::de::Visitor<'de> for Counts<K> {
        type Value = BTreeMap<K, u64>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a map of whole numbers to counts, or null")
        }

        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(BTreeMap::new())
        }

        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(BTreeMap::new())
        }

        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            use serde::de::Error;
            let mut out = BTreeMap::new();
            while let Some((k, v)) = map.next_entry::<Number, Number>()? {
                let key = k
                    .whole()
                    .and_then(|f| K::try_from(f as i64).ok())
                    .ok_or_else(|| A::Error::custom("expected a whole-number key"))?;
                let n = v
                    .whole()
                    .filter(|f| *f >= 0.0)
                    .ok_or_else(|| A::Error::custom("expected a count"))?;
                *out.entry(key).or_insert(0) += n as u64;
            }
            Ok(out)
        }
    }

    d.deserialize_any(Counts(std::marker::PhantomData))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::stats::RequestStats;

    const T0: f64 = 1_700_000_000.0;

    #[test]
    fn error_type_is_the_class_of_the_failure_text() {
        let cases = [
            (
                "HTTPError('404 Client Error: Not Found for url: /x')",
                "HTTPError",
            ),
            ("LocustBadStatusCode(code=500)", "LocustBadStatusCode"),
            (
                "ConnectionRefusedError(111, 'Connection refused')",
                "ConnectionRefusedError",
            ),
            ("CatchResponseError('bad body')", "CatchResponseError"),
            ("just a message", "str"),
            ("oops (details)", "str"),
            ("", "str"),
            ("3(x)", "str"),
        ];
        for (text, expected) in cases {
            assert_eq!(error_type(text), expected, "{text}");
        }
    }

    #[test]
    fn repr_quotes_like_python() {
        assert_eq!(py_repr_str("abc"), "'abc'");
        assert_eq!(py_repr_str("it's"), "\"it's\"");
        assert_eq!(py_repr_str("a'b\"c"), "'a\\'b\"c'");
        assert_eq!(py_repr_str("x\ny"), "'x\\ny'");
    }

    #[test]
    fn transport_failures_read_as_locust_records_them() {
        let failure = |kind, message: &str| {
            UserKind::HttpUser.transport_failure(&ClientError::new(kind, message))
        };
        #[rustfmt::skip]
        let cases = [
            (ErrorKind::ConnectRefused, "Connection refused", "ConnectionError",
             "ConnectionRefusedError(111, 'Connection refused')"),
            (ErrorKind::Reset, "Connection reset by peer", "ConnectionError",
             "ConnectionError('Connection reset by peer')"),
            (ErrorKind::ReadTimeout, "Read timed out. (read timeout=0.5)", "ReadTimeout",
             "ReadTimeout('Read timed out. (read timeout=0.5)')"),
            (ErrorKind::Protocol, "bad", "ConnectionError", "ConnectionError('bad')"),
            (ErrorKind::InvalidHeader, "Invalid header name 'a b'", "InvalidHeader",
             "InvalidHeader(\"Invalid header name 'a b'\")"),
            (ErrorKind::Internal, "boom", "ConnectionError", "ConnectionError('boom')"),
        ];
        for (kind, message, exception, text) in cases {
            let f = failure(kind, message);
            assert_eq!(
                (f.exception, f.message.as_str(), f.text.as_str()),
                (exception, message, text)
            );
        }
    }

    /// Each cause in the words of Locust 2.47's two clients, as recorded from real Locust runs
    /// against servers that misbehave so (requests 2.32, urllib3 2, geventhttpclient 2.3).
    #[test]
    fn causes_in_the_words_of_each_client() {
        use std::time::Duration;
        let url = "http://127.0.0.1:8089/q?x=1";
        let error = |kind, cause| {
            let mut e = ClientError::new(kind, "horde's words");
            e.cause = cause;
            e.url = url.to_owned();
            e
        };
        let protocol = |cause| error(ErrorKind::Protocol, cause);
        #[rustfmt::skip]
        // (the error, HttpUser's (exception, text), FastHttpUser's (exception, text))
        type Words<'a> = (&'a str, &'a str);
        let cases: Vec<(ClientError, Words, Words)> = vec![
            (error(ErrorKind::Connect, Cause::Resolve { code: -2, text: "Name or service not known".into() }),
             ("ConnectionError", "gaierror(-2, 'Name or service not known')"),
             ("ConnectionError", "gaierror(-2, 'Name or service not known')")),
            (error(ErrorKind::ConnectTimeout, Cause::ConnectTimeout { timeout: Duration::from_millis(500) }),
             ("ConnectTimeout", "ConnectTimeoutError(<HTTPConnection(host='127.0.0.1', port=8089) at 0x....>, \
                                 'Connection to 127.0.0.1 timed out. (connect timeout=0.5)')"),
             ("ConnectTimeout", "RetriesExceeded('http://127.0.0.1:8089/q?x=1', 0, original=timed out)")),
            (error(ErrorKind::ReadTimeout, Cause::ReadTimeout { timeout: Duration::from_secs(1), in_body: false }),
             ("ReadTimeout", "ReadTimeout(ReadTimeoutError(\"HTTPConnectionPool(host='127.0.0.1', port=8089): \
                              Read timed out. (read timeout=1.0)\"))"),
             ("ReadTimeout", "RetriesExceeded('http://127.0.0.1:8089/q?x=1', 0, original=timed out)")),
            (error(ErrorKind::ReadTimeout, Cause::ReadTimeout { timeout: Duration::from_secs(1), in_body: true }),
             ("ConnectionError", "ReadTimeoutError(\"HTTPConnectionPool(host='127.0.0.1', port=8089): Read timed out.\")"),
             ("ReadTimeout", "TimeoutError('timed out')")),
            (error(ErrorKind::Reset, Cause::Reset { in_body: false }),
             ("ConnectionError", "ConnectionResetError(104, 'Connection reset by peer')"),
             ("ConnectionError", "HTTPConnectionClosed('connection closed.')")),
            (error(ErrorKind::Reset, Cause::Reset { in_body: true }),
             ("ChunkedEncodingError", "ChunkedEncodingError(ProtocolError(\"Connection broken: ConnectionResetError(104, \
                                       'Connection reset by peer')\", ConnectionResetError(104, 'Connection reset by peer')))"),
             ("ConnectionError", "ConnectionResetError(104, 'Connection reset by peer')")),
            (protocol(Cause::ClosedBeforeResponse),
             ("ConnectionError", "RemoteDisconnected('Remote end closed connection without response')"),
             ("ConnectionError", "HTTPConnectionClosed('connection closed.')")),
            (protocol(Cause::ClosedInHead { status_line: true }),
             ("ConnectionError", "RemoteDisconnected('Remote end closed connection without response')"),
             ("ConnectionError", "HTTPParseError('Invalid EOF state', 14)")),
            (protocol(Cause::BadStatusLine { line: b"hello there\r\n".to_vec(), problem: StatusLine::NotHttp }),
             ("ConnectionError", "BadStatusLine('hello there\\r\\n')"),
             ("ConnectionError", "HTTPParseError('Expected HTTP/, RTSP/ or ICE/', 8)")),
            (protocol(Cause::BadStatusLine { line: b"HTTP/1.1 abc OK\r\n".to_vec(), problem: StatusLine::Status }),
             ("ConnectionError", "BadStatusLine('HTTP/1.1 abc OK\\r\\n')"),
             ("ConnectionError", "HTTPParseError('Invalid status code', 13)")),
            (protocol(Cause::BadStatusLine { line: b"HTTP/2 200\r\n".to_vec(), problem: StatusLine::Version { dot: false } }),
             ("ConnectionError", "UnknownProtocol('HTTP/2')"),
             ("ConnectionError", "HTTPParseError('Expected dot', 9)")),
            (protocol(Cause::ContentLength(LengthProblem::Conflicting("2, 3".into()))),
             ("InvalidHeader", "InvalidHeader(InvalidHeader('Content-Length contained multiple unmatching values (2, 3)'))"),
             ("ConnectionError", "HTTPParseError('Duplicate Content-Length', 4)")),
            (protocol(Cause::ContentLength(LengthProblem::Overflow)),
             ("ConnectionError", "ConnectionError(\"horde's words\")"),
             ("ConnectionError", "HTTPParseError('Content-Length overflow', 11)")),
            (protocol(Cause::BodyIncomplete { read: 5, expected: 10 }),
             ("ChunkedEncodingError", "ChunkedEncodingError(ProtocolError('Connection broken: IncompleteRead(5 bytes read, \
                                       5 more expected)', IncompleteRead(5 bytes read, 5 more expected)))"),
             ("ConnectionError", "HTTPParseError('Incomplete response.')")),
            (protocol(Cause::ChunkIncomplete { read: 3, more: 2 }),
             ("ChunkedEncodingError", "ChunkedEncodingError(ProtocolError('Connection broken: IncompleteRead(3 bytes read, \
                                       2 more expected)', IncompleteRead(3 bytes read, 2 more expected)))"),
             ("ConnectionError", "HTTPParseError('Incomplete response.')")),
            (protocol(Cause::ChunkIncomplete { read: 3, more: u64::MAX - 3 }),
             ("ChunkedEncodingError", "ChunkedEncodingError(ProtocolError('Connection broken: IncompleteRead(3 bytes read, \
                                       10237 more expected)', IncompleteRead(3 bytes read, 10237 more expected)))"),
             ("ConnectionError", "HTTPParseError('Incomplete response.')")),
            (protocol(Cause::ChunkIncomplete { read: 25_000, more: 25_000 }),
             ("ChunkedEncodingError", "ChunkedEncodingError(ProtocolError('Connection broken: IncompleteRead(4520 bytes read, \
                                       5720 more expected)', IncompleteRead(4520 bytes read, 5720 more expected)))"),
             ("ConnectionError", "HTTPParseError('Incomplete response.')")),
            (protocol(Cause::ChunkedEnded),
             ("ChunkedEncodingError", "ChunkedEncodingError(ProtocolError('Response ended prematurely'))"),
             ("ConnectionError", "HTTPParseError('Incomplete response.')")),
            (protocol(Cause::BadChunkSize { line: b"zz\r\n".to_vec(), overflow: false }),
             ("ChunkedEncodingError", "ChunkedEncodingError(ProtocolError(\"Connection broken: InvalidChunkLength(got length \
                                       b'zz\\\\r\\\\n', 0 bytes read)\", InvalidChunkLength(got length b'zz\\r\\n', 0 bytes read)))"),
             ("ConnectionError", "HTTPParseError('Invalid character in chunk size', 12)")),
            (protocol(Cause::BadChunkSize { line: b"1ffffffffffffffff\r\n".to_vec(), overflow: true }),
             ("ChunkedEncodingError", "ChunkedEncodingError(ProtocolError(\"Connection broken: InvalidChunkLength(got length \
                                       b'1ffffffffffffffff\\\\r\\\\n', 0 bytes read)\", InvalidChunkLength(got length \
                                       b'1ffffffffffffffff\\r\\n', 0 bytes read)))"),
             ("ConnectionError", "HTTPParseError('Chunk size overflow', 12)")),
            (protocol(Cause::ChunkLineTooLong),
             ("ChunkedEncodingError", "ChunkedEncodingError(ProtocolError('Response chunk size line exceeded maximum allowed length'))"),
             ("ConnectionError", "ConnectionError(\"horde's words\")")),
            (protocol(Cause::ChunkDataNotTerminated),
             ("ConnectionError", "ConnectionError(\"horde's words\")"),
             ("ConnectionError", "HTTPParseError('Expected LF after chunk data', 2)")),
        ];
        // A `\` at a line's end above continues the string without the next line's indent.
        for (e, http_user, fast_http_user) in cases {
            for (kind, (exception, text)) in [
                (UserKind::HttpUser, http_user),
                (UserKind::FastHttpUser, fast_http_user),
            ] {
                let f = kind.transport_failure(&e);
                assert_eq!(
                    (f.exception, f.text.as_str()),
                    (exception, text),
                    "{kind:?} {:?}",
                    e.cause
                );
                assert_eq!(f.message, "horde's words");
            }
        }
    }

    #[test]
    fn bytes_repr_like_python() {
        assert_eq!(py_repr_bytes(b"zz\r\n"), "b'zz\\r\\n'");
        assert_eq!(py_repr_bytes(b"it's"), "b\"it's\"");
        assert_eq!(py_repr_bytes(b"a'b\"c"), "b'a\\'b\"c'");
        assert_eq!(
            py_repr_bytes(&[0, 0x7f, 0xff, b'\\']),
            "b'\\x00\\x7f\\xff\\\\'"
        );
        assert_eq!(py_repr_str("\u{85}\u{a0}\u{e9}"), "'\\x85\\xa0\u{e9}'");
    }

    #[test]
    fn status_failures_by_user_kind() {
        let http = UserKind::HttpUser;
        assert_eq!(http.status_failure(302, "Found", "/x"), None);
        assert_eq!(http.status_failure(399, "?", "/x"), None);
        let f = http.status_failure(404, "Not Found", "/x").unwrap();
        assert_eq!(f.message, "404 Client Error: Not Found for url: /x");
        assert_eq!(
            f.text,
            "HTTPError('404 Client Error: Not Found for url: /x')"
        );
        let f = http.status_failure(503, "Unavailable", "/y").unwrap();
        assert_eq!(
            f.text,
            "HTTPError('503 Server Error: Unavailable for url: /y')"
        );

        let fast = UserKind::FastHttpUser;
        for ok in [200, 206, 208, 226, 301, 304, 307, 308] {
            assert_eq!(fast.status_failure(ok, "", "/x"), None, "{ok}");
        }
        for bad in [100, 209, 300, 305, 404, 500] {
            let f = fast.status_failure(bad, "R", "/x").unwrap();
            assert_eq!(f.text, format!("LocustBadStatusCode(code={bad})"));
            assert_eq!(f.message, format!("{bad} R for url: /x"));
        }
    }

    #[test]
    fn outcome_of_a_result() {
        let mut e = ClientError::new(ErrorKind::ConnectRefused, "Connection refused");
        e.elapsed = Duration::from_millis(3);
        let o = UserKind::HttpUser.outcome(&Err(e), "/n");
        assert_eq!((o.status, o.content_length), (0, 0));
        assert!((o.response_time_ms - 3.0).abs() < 1e-9);
        let r = o.record("GET", "/n");
        assert_eq!(
            r.error,
            Some("ConnectionRefusedError(111, 'Connection refused')")
        );
    }

    #[test]
    fn entry_dict_round_trip() {
        let stats = RequestStats::new_at(T0);
        stats.log_at("GET", "/j", Some(57.4), 10, None, T0 + 1.2);
        stats.log_at("GET", "/j", Some(145.3), 20, Some("x"), T0 + 2.5);
        stats.log_at("GET", "/j", None, 0, None, T0 + 2.6);
        let snap = stats.snapshot();
        let e = snap.entries.iter().find(|e| e.name == "/j").unwrap();
        let d = EntryDict::from(e);
        let v = serde_json::to_value(&d).unwrap();
        let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        let mut expected = vec![
            "name",
            "method",
            "last_request_timestamp",
            "start_time",
            "num_requests",
            "num_none_requests",
            "num_failures",
            "total_response_time",
            "max_response_time",
            "min_response_time",
            "total_content_length",
            "response_times",
            "num_reqs_per_sec",
            "num_fail_per_sec",
        ];
        expected.sort_unstable();
        assert_eq!(keys, expected);
        assert_eq!(v["response_times"], serde_json::json!({"57": 1, "150": 1}));
        assert_eq!(v["min_response_time"], serde_json::json!(57.4));
        let empty = EntryDict::from(&StatsEntry::new_at("x", "", T0));
        assert_eq!(empty.min_response_time, None);

        let back: EntryDict = serde_json::from_value(v).unwrap();
        assert_eq!(back, d);
        let rebuilt = back.to_entry();
        assert_eq!(rebuilt.num_requests, 3);
        assert_eq!(rebuilt.num_none_requests, 1);
        assert_eq!(rebuilt.num_failures, 1);
        assert_eq!(rebuilt.min_response_time, Some(57.4));
        assert_eq!(rebuilt.max_response_time, 145.3);
        assert_eq!(rebuilt.total_content_length, 30);
        assert_eq!(rebuilt.start_time, e.start_time);
        assert_eq!(rebuilt.last_request_timestamp, Some(T0 + 2.6));
        assert_eq!(rebuilt.num_reqs_per_sec, e.num_reqs_per_sec);
        assert_eq!(rebuilt.num_fail_per_sec, e.num_fail_per_sec);
        assert_eq!(
            rebuilt.to_locust_response_times(),
            e.to_locust_response_times()
        );

        // Python's float keys and counts, a null method and null maps are accepted too.
        let py = serde_json::json!({"name": "/k", "method": null, "start_time": T0,
            "last_request_timestamp": null, "num_requests": 2.0, "num_failures": 0,
            "total_response_time": 300, "max_response_time": 150, "min_response_time": null,
            "total_content_length": 0, "response_times": {"150.0": 2}, "num_reqs_per_sec": {},
            "num_fail_per_sec": null});
        let k: EntryDict = serde_json::from_value(py).unwrap();
        assert_eq!(
            (k.name.as_str(), k.method.as_str(), k.num_requests),
            ("/k", "", 2)
        );
        assert_eq!(
            k.to_entry().to_locust_response_times(),
            BTreeMap::from([(150, 2)])
        );
        assert!(serde_json::from_value::<EntryDict>(serde_json::json!([1])).is_err());
        let fractional = serde_json::json!({"name": "/k", "method": "GET", "start_time": T0,
            "last_request_timestamp": null, "num_requests": 2.5, "num_failures": 0,
            "total_response_time": 0, "max_response_time": 0, "min_response_time": null,
            "total_content_length": 0, "response_times": {}, "num_reqs_per_sec": {},
            "num_fail_per_sec": {}});
        assert!(serde_json::from_value::<EntryDict>(fractional).is_err());
    }

    #[test]
    fn a_report_merges_exactly_with_histograms_and_by_bucket_without() {
        #[derive(Serialize)]
        struct Report {
            stats: Vec<EntryDict>,
            stats_total: EntryDict,
            errors: BTreeMap<String, ErrorDict>,
            user_classes_count: BTreeMap<String, i64>,
        }
        let worker = RequestStats::new_at(T0);
        for i in 0..1000 {
            let ms = 0.05 + (i as f64) * 0.37; // 0.05 ms .. 370 ms
            let error = (i % 100 == 0).then_some("boom");
            worker.log_at("GET", "/a", Some(ms), 10, error, T0 + 1.0);
        }
        let deltas = worker.take_deltas();
        let report = |hdr: bool| Report {
            stats: deltas
                .entries
                .iter()
                .map(|e| {
                    if hdr {
                        EntryDict::with_histogram(e)
                    } else {
                        EntryDict::from(e)
                    }
                })
                .collect(),
            stats_total: EntryDict::with_histogram(&deltas.total),
            errors: deltas
                .errors
                .iter()
                .map(|e| {
                    let d = ErrorDict {
                        name: e.name.clone(),
                        method: e.method.clone(),
                        error: e.error.clone(),
                        occurrences: e.occurrences,
                        first_seen: Some(e.first_seen),
                        last_seen: Some(e.last_seen),
                    };
                    (format!("{}.{}", e.method, e.name), d)
                })
                .collect(),
            user_classes_count: BTreeMap::from([("U".to_owned(), 3)]),
        };
        for hdr in [true, false] {
            let raw = rmp_serde::to_vec_named(&("stats", report(hdr), "w1")).unwrap();
            let (node, decoded) = decode_stats_message(&raw).unwrap();
            assert_eq!(node, "w1");
            assert_eq!(
                decoded.user_classes_count,
                Some(BTreeMap::from([("U".to_owned(), 3)]))
            );
            let master = RequestStats::new_at(T0);
            master.merge_report(&decoded);
            master.merge_report(&decoded); // two workers that sent the same
            let snap = master.snapshot();
            let (a, w) = (&snap.entries[0], &deltas.entries[0]);
            assert_eq!((a.num_requests, a.num_failures), (2000, 20));
            assert_eq!(snap.total.num_requests, 2000);
            assert_eq!(snap.errors[0].occurrences, 20);
            assert_eq!(a.min_response_time, w.min_response_time);
            for p in [0.5, 0.9, 0.99, 0.999] {
                let (got, want) = (
                    a.get_response_time_percentile(p),
                    w.get_response_time_percentile(p),
                );
                if hdr {
                    assert_eq!(got, want, "p{p}");
                } else {
                    // Locust's buckets: two significant digits.
                    assert!(
                        (got - want).abs() <= want * 0.06 + 0.5,
                        "p{p}: {got} vs {want}"
                    );
                }
            }
        }
        assert!(decode_stats_message(b"\x93\xa5stats").is_err());
        assert!(decode_stats_message(&[0xc1; 40]).is_err());
        let heartbeat = rmp_serde::to_vec(&("heartbeat", (), "w1")).unwrap();
        assert!(decode_stats_message(&heartbeat).is_err());
    }
}

//! Every way a request can fail, as one error type. A failure is data (the run records it and goes
//! on), so each error carries the text Locust would have recorded for it.

use std::fmt;
use std::time::Duration;

/// What went wrong, coarse enough for Python to pick an exception class from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    InvalidUrl,
    ConnectRefused,
    ConnectTimeout,
    Connect,
    Reset,
    ReadTimeout,
    TotalTimeout,
    Tls,
    Protocol,
    TooManyRedirects,
    Decode,
}

impl ErrorKind {
    /// Stable name used by the Python bindings to choose an exception class.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::InvalidUrl => "InvalidURL",
            ErrorKind::ConnectRefused => "ConnectionRefused",
            ErrorKind::ConnectTimeout => "ConnectTimeout",
            ErrorKind::Connect => "ConnectionError",
            ErrorKind::Reset => "ConnectionReset",
            ErrorKind::ReadTimeout => "ReadTimeout",
            ErrorKind::TotalTimeout => "Timeout",
            ErrorKind::Tls => "SSLError",
            ErrorKind::Protocol => "ProtocolError",
            ErrorKind::TooManyRedirects => "TooManyRedirects",
            ErrorKind::Decode => "ContentDecodingError",
        }
    }
}

#[derive(Clone, Debug)]
pub struct ClientError {
    pub kind: ErrorKind,
    pub message: String,
    /// Time from the start of the request to the failure.
    pub elapsed: Duration,
}

impl ClientError {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ClientError {
            kind,
            message: message.into(),
            elapsed: Duration::ZERO,
        }
    }

    /// The error as Locust's stats table shows it: the `repr()` of the exception a requests-based
    /// HttpUser would have recorded (for refused/reset connections that is the OS error itself).
    pub fn locust_repr(&self) -> String {
        match self.kind {
            ErrorKind::ConnectRefused => "ConnectionRefusedError(111, 'Connection refused')".into(),
            ErrorKind::Reset => "ConnectionResetError(104, 'Connection reset by peer')".into(),
            ErrorKind::Protocol | ErrorKind::Connect => {
                format!("ConnectionError({})", py_repr_str(&self.message))
            }
            kind => format!("{}({})", kind.name(), py_repr_str(&self.message)),
        }
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.name(), self.message)
    }
}

impl std::error::Error for ClientError {}

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
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repr_quotes_like_python() {
        assert_eq!(py_repr_str("abc"), "'abc'");
        assert_eq!(py_repr_str("it's"), "\"it's\"");
        assert_eq!(py_repr_str("a'b\"c"), "'a\\'b\"c'");
        assert_eq!(py_repr_str("x\ny"), "'x\\ny'");
    }

    #[test]
    fn locust_repr_of_os_errors() {
        let e = ClientError::new(ErrorKind::ConnectRefused, "Connection refused");
        assert_eq!(
            e.locust_repr(),
            "ConnectionRefusedError(111, 'Connection refused')"
        );
        let e = ClientError::new(ErrorKind::ReadTimeout, "Read timed out. (read timeout=0.5)");
        assert_eq!(
            e.locust_repr(),
            "ReadTimeout('Read timed out. (read timeout=0.5)')"
        );
    }
}

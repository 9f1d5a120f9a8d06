//! HTTP/1.1 on one connection, driven by the calling task: write the request in one syscall,
//! read and parse the response with httparse, frame the body (length, chunked or until close).
//! hyper's client splits every connection into its own task and channel; a load generator's
//! users send one request at a time per connection, so doing the work in the caller's task
//! saves two task wake-ups and several allocations per request (see benches/engine_vs_wrk.py).

use std::future::{poll_fn, Future};
use std::io;
use std::pin::{pin, Pin};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::chunked::ChunkedDecoder;
use super::error::{
    fmt_secs, from_io, resolve_error, Cause, ClientError, ErrorKind, LengthProblem, StatusLine,
};
use super::headers::Headers;
use super::pool::Origin;

const MAX_HEAD: usize = 256 * 1024;
const MAX_HEADERS: usize = 128;
/// The most memory reserved ahead for a body from its Content-Length: the rest grows as bytes
/// arrive, so a server that announces a huge body and sends little costs little.
const MAX_BODY_RESERVE: usize = 1024 * 1024;

/// Read buffers between responses. A connection gives its buffer back when a response leaves
/// it empty, so thousands of idle users hold none; the next read on this thread takes one back
/// instead of allocating. A fresh 4 KiB buffer per response cost ~5% of a small request's CPU in
/// glibc's malloc (4 KiB is past its fast bins, and each such request consolidates them).
const SPARE_BUFFERS: usize = 256;
const SPARE_CAPACITY: usize = 4096;

thread_local! {
    static SPARE: std::cell::RefCell<Vec<BytesMut>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn spare_take() -> Option<BytesMut> {
    SPARE.with(|spare| spare.borrow_mut().pop())
}

fn spare_give(mut buf: BytesMut) {
    buf.clear();
    // Moves the (empty) view back to the start of its allocation; no copy, no allocation when
    // the buffer is not shared, which it is not once every response's bytes are copied out.
    buf.reserve(SPARE_CAPACITY);
    if buf.capacity() == SPARE_CAPACITY {
        SPARE.with(|spare| {
            let mut spare = spare.borrow_mut();
            if spare.len() < SPARE_BUFFERS {
                spare.push(buf);
            }
        });
    }
}

pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// The head of a response.
pub(crate) struct Head {
    pub status: u16,
    pub reason: String,
    pub version: http::Version,
    pub headers: Headers,
}

/// A failed exchange. `retryable` is set when nothing of a response arrived, so a reused
/// connection that the server had already closed can be replaced and the request sent again.
pub(crate) struct Failed {
    pub error: ClientError,
    pub retryable: bool,
}

impl From<ClientError> for Failed {
    fn from(error: ClientError) -> Self {
        Failed {
            error,
            retryable: false,
        }
    }
}

pub(crate) struct Conn {
    stream: Stream,
    buf: BytesMut,
    /// The read timeout's timer, kept for the connection's life. A timer registered and
    /// cancelled per read cost two trips through the timer wheel's lock per request; this one
    /// is re-armed only when it fires before the current read's deadline (about once per
    /// timeout period), or when a shorter timeout asks for an earlier deadline.
    timer: Option<Pin<Box<Sleep>>>,
    /// False once the server asked to close, or the body ran to the end of the stream.
    pub reusable: bool,
}

/// A TCP connection to `host` (as in a URL: IPv6 literals in brackets) and `port`.
pub(crate) async fn connect_tcp(host: &str, port: u16) -> Result<TcpStream, ClientError> {
    // Bracketed IPv6 literals come from URLs as "[::1]".
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    // Resolved apart from connecting, so that a name that does not resolve is told from an
    // address that cannot be reached. Each address is tried in turn, as TcpStream::connect does.
    let addrs = tokio::net::lookup_host((bare, port))
        .await
        .map_err(|e| resolve_error(&e))?;
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(tcp) => return Ok(tcp),
            Err(e) => last = Some(e),
        }
    }
    Err(match last {
        Some(e) => from_io(&e, true),
        None => ClientError::new(ErrorKind::Connect, format!("no address for {bare:?}")),
    })
}

impl Conn {
    pub async fn open(
        origin: &Origin<'_>,
        tls: Option<&Arc<rustls::ClientConfig>>,
    ) -> Result<Conn, ClientError> {
        let tcp = connect_tcp(origin.host, origin.port).await?;
        Conn::establish(tcp, origin, tls).await
    }

    /// A connection to `origin` over `tcp`, which leads there (directly or through a proxy's
    /// tunnel): TLS is set up here for https.
    pub async fn establish(
        tcp: TcpStream,
        origin: &Origin<'_>,
        tls: Option<&Arc<rustls::ClientConfig>>,
    ) -> Result<Conn, ClientError> {
        let _ = tcp.set_nodelay(true);
        let bare = origin.host.trim_start_matches('[').trim_end_matches(']');
        let stream = if origin.https {
            let config =
                tls.ok_or_else(|| ClientError::new(ErrorKind::Tls, "TLS is not configured"))?;
            let name = ServerName::try_from(bare.to_owned()).map_err(|e| {
                ClientError::new(ErrorKind::InvalidUrl, format!("bad host name: {e}"))
            })?;
            let tls = TlsConnector::from(config.clone())
                .connect(name, tcp)
                .await
                .map_err(|e| {
                    let mut err = from_io(&e, true);
                    if matches!(err.kind, ErrorKind::Connect | ErrorKind::Protocol) {
                        err.kind = ErrorKind::Tls;
                        err.message = format!("TLS handshake failed: {}", err.message);
                    }
                    err
                })?;
            Stream::Tls(Box::new(tls))
        } else {
            Stream::Plain(tcp)
        };
        Ok(Conn {
            stream,
            // Allocated on the first read: an idle user's connection then holds no buffer.
            buf: BytesMut::new(),
            timer: None,
            reusable: true,
        })
    }

    /// Sends one serialised request and reads the whole response.
    pub async fn roundtrip(
        &mut self,
        request: &[u8],
        body: &[u8],
        head_request: bool,
        read_timeout: Option<Duration>,
    ) -> Result<(Head, Bytes), Failed> {
        let written = if body.is_empty() {
            self.stream.write_all(request).await
        } else if body.len() <= 16 * 1024 {
            // One write for head and small body: fewer syscalls and packets.
            let mut all = Vec::with_capacity(request.len() + body.len());
            all.extend_from_slice(request);
            all.extend_from_slice(body);
            self.stream.write_all(&all).await
        } else {
            match self.stream.write_all(request).await {
                Ok(()) => self.stream.write_all(body).await,
                Err(e) => Err(e),
            }
        };
        if let Some(e) = written.err().or(match &self.stream {
            Stream::Tls(_) => self.stream.flush().await.err(),
            Stream::Plain(_) => None,
        }) {
            self.reusable = false;
            return Err(Failed {
                error: from_io(&e, false),
                retryable: true,
            });
        }
        self.buf.clear();
        // Whether any byte of a response has come (interim 1xx responses count).
        let mut answered = false;
        let head = loop {
            match self.parse_head()? {
                Some(head) if (100..200).contains(&head.status) && head.status != 101 => {
                    answered = true;
                    continue; // 100 Continue and friends precede the real response
                }
                Some(head) => break head,
                None => {
                    if self.buf.len() > MAX_HEAD {
                        self.reusable = false;
                        return Err(ClientError::new(
                            ErrorKind::Protocol,
                            "malformed HTTP response: header section too large",
                        )
                        .because(Cause::HeadTooLarge)
                        .into());
                    }
                    let nothing_yet = !answered && self.buf.is_empty();
                    let n = self.fill(read_timeout).await.map_err(|error| Failed {
                        retryable: nothing_yet && error.kind != ErrorKind::ReadTimeout,
                        error,
                    })?;
                    if n == 0 {
                        self.reusable = false;
                        let cause = if nothing_yet {
                            Cause::ClosedBeforeResponse
                        } else {
                            // Empty lines before a status line are skipped, as httparse does.
                            let start = self.buf.iter().position(|&b| b != b'\r' && b != b'\n');
                            Cause::ClosedInHead {
                                status_line: start.is_some_and(|i| self.buf[i..].contains(&b'\n')),
                            }
                        };
                        return Err(Failed {
                            error: ClientError::new(
                                ErrorKind::Protocol,
                                "connection closed before the response was complete",
                            )
                            .because(cause),
                            retryable: nothing_yet,
                        });
                    }
                }
            }
        };
        let body = self
            .read_body(&head, head_request, read_timeout)
            .await
            .map_err(in_body)?;
        if let Some(timer) = &mut self.timer {
            // The timer holds the waker of the last task that waited on it, and with it that
            // task's memory, until it fires: swap in a waker that holds nothing.
            let _ = timer.as_mut().poll(&mut Context::from_waker(noop_waker()));
        }
        if self.buf.is_empty() {
            // Thousands of mostly idle users each keeping a read buffer would cost more memory
            // than it saves: the buffer goes back to this thread's spares (see SPARE_BUFFERS).
            spare_give(std::mem::take(&mut self.buf));
        }
        Ok((head, body))
    }

    /// Reads more bytes into the buffer; Ok(0) at end of stream.
    async fn fill(&mut self, read_timeout: Option<Duration>) -> Result<usize, ClientError> {
        if self.buf.capacity() == 0 {
            if let Some(spare) = spare_take() {
                self.buf = spare;
            }
        }
        if self.buf.capacity() - self.buf.len() < 1024 {
            // Small responses fit the first 4 KiB; longer ones double it, up to 256 KiB a read.
            self.buf
                .reserve(self.buf.len().clamp(SPARE_CAPACITY, 256 * 1024));
        }
        let result = match read_timeout {
            Some(t) => {
                let deadline = Instant::now() + t;
                let timer = match &mut self.timer {
                    Some(timer) => {
                        if timer.deadline() > deadline {
                            timer.as_mut().reset(deadline);
                        }
                        timer
                    }
                    None => self
                        .timer
                        .insert(Box::pin(tokio::time::sleep_until(deadline))),
                };
                let mut read = pin!(self.stream.read_buf(&mut self.buf));
                let outcome = poll_fn(|cx| {
                    if let Poll::Ready(r) = read.as_mut().poll(cx) {
                        return Poll::Ready(Some(r));
                    }
                    // The timer may be set for an earlier read's deadline: then move it on.
                    while timer.as_mut().poll(cx).is_ready() {
                        if Instant::now() >= deadline {
                            return Poll::Ready(None);
                        }
                        timer.as_mut().reset(deadline);
                    }
                    Poll::Pending
                })
                .await;
                match outcome {
                    Some(r) => r,
                    None => {
                        self.reusable = false;
                        return Err(ClientError::new(
                            ErrorKind::ReadTimeout,
                            format!("Read timed out. (read timeout={})", fmt_secs(t)),
                        )
                        .because(Cause::ReadTimeout {
                            timeout: t,
                            in_body: false,
                        }));
                    }
                }
            }
            None => self.stream.read_buf(&mut self.buf).await,
        };
        result.map_err(|e| {
            self.reusable = false;
            from_io(&e, false)
        })
    }

    /// Parses a complete head at the start of the buffer and removes it; None if incomplete.
    fn parse_head(&mut self) -> Result<Option<Head>, ClientError> {
        // Uninitialised slots: initialising 128 headers per response would cost a 4 KiB memset.
        let mut slots =
            [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
        let mut parsed = httparse::Response::new(&mut []);
        let len = match httparse::ParserConfig::default().parse_response_with_uninit_headers(
            &mut parsed,
            &self.buf,
            &mut slots,
        ) {
            // The limit holds however the head arrived: in one read or in many.
            Ok(httparse::Status::Complete(n)) if n > MAX_HEAD => {
                self.reusable = false;
                return Err(ClientError::new(
                    ErrorKind::Protocol,
                    "malformed HTTP response: header section too large",
                )
                .because(Cause::HeadTooLarge));
            }
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(e) => {
                self.reusable = false;
                return Err(ClientError::new(
                    ErrorKind::Protocol,
                    format!("malformed HTTP response: {e}"),
                )
                .because(head_problem(&self.buf, e)));
            }
        };
        let status = parsed.code.unwrap_or(0);
        let reason = parsed.reason.unwrap_or("").to_owned();
        let version = if parsed.version == Some(0) {
            http::Version::HTTP_10
        } else {
            http::Version::HTTP_11
        };
        // Names and values stay where they are in one copy of the head (httparse has checked them:
        // names are tokens, values have no control characters but tab).
        let base = self.buf.as_ptr() as usize;
        let span = |part: &[u8]| {
            let start = part.as_ptr() as usize - base;
            (start as u32, (start + part.len()) as u32)
        };
        let fields = parsed
            .headers
            .iter()
            .map(|h| {
                let (ns, ne) = span(h.name.as_bytes());
                let (vs, ve) = span(h.value);
                (ns, ne, vs, ve)
            })
            .collect();
        let headers = Headers::new(Bytes::copy_from_slice(&self.buf[..len]), fields);
        self.buf.advance(len);
        let close = headers
            .get_all("connection")
            .any(|v| has_token(v, b"close"));
        let keep_alive = headers
            .get_all("connection")
            .any(|v| has_token(v, b"keep-alive"));
        if close || (version == http::Version::HTTP_10 && !keep_alive) {
            self.reusable = false;
        }
        Ok(Some(Head {
            status,
            reason,
            version,
            headers,
        }))
    }

    async fn read_body(
        &mut self,
        head: &Head,
        head_request: bool,
        read_timeout: Option<Duration>,
    ) -> Result<Bytes, ClientError> {
        if head_request || head.status == 204 || head.status == 304 {
            return Ok(Bytes::new());
        }
        if head.status == 101 {
            // The connection now speaks another protocol, which this client does not.
            self.reusable = false;
            return Ok(Bytes::new());
        }
        let chunked = head
            .headers
            .get_all("transfer-encoding")
            .any(|v| has_token(v, b"chunked"));
        if chunked {
            if head.headers.contains("content-length") {
                // Both framings: chunked wins (RFC 9112, 6.3), but a connection whose framing
                // was ambiguous is not trusted with another request.
                self.reusable = false;
            }
            // Boxed: chunked bodies are the rarer case, and their future would enlarge every request's.
            return Box::pin(self.read_chunked(read_timeout)).await;
        }
        let declared = content_length(&head.headers).map_err(|problem| {
            self.reusable = false;
            ClientError::new(
                ErrorKind::Protocol,
                "malformed HTTP response: bad Content-Length",
            )
            .because(Cause::ContentLength(problem))
        })?;
        if let Some(len) = declared {
            let missing = len.saturating_sub(self.buf.len() as u64);
            if missing > 0 {
                self.buf.reserve(
                    usize::try_from(missing).map_or(MAX_BODY_RESERVE, |m| m.min(MAX_BODY_RESERVE)),
                );
            }
            while (self.buf.len() as u64) < len {
                if self.fill(read_timeout).await? == 0 {
                    self.reusable = false;
                    let read = self.buf.len() as u64;
                    return Err(ClientError::new(
                        ErrorKind::Protocol,
                        format!("response body ended early: connection closed after {read} of {len} bytes"),
                    )
                    .because(Cause::BodyIncomplete { read, expected: len }));
                }
            }
            // The whole body is in the buffer now, so it fits in memory: `len` is a usize.
            let len = len as usize;
            if self.buf.len() > len {
                self.reusable = false; // the server sent more than it announced
            }
            return Ok(self.take(len));
        }
        // No length: the body runs until the server closes the connection.
        self.reusable = false;
        while self.fill(read_timeout).await? > 0 {}
        let n = self.buf.len();
        Ok(self.take(n))
    }

    /// The first `n` bytes of the buffer; small bodies are copied so the buffer stays reusable.
    fn take(&mut self, n: usize) -> Bytes {
        if n <= 4096 {
            let out = Bytes::copy_from_slice(&self.buf[..n]);
            self.buf.advance(n);
            out
        } else {
            self.buf.split_to(n).freeze()
        }
    }

    async fn read_chunked(&mut self, read_timeout: Option<Duration>) -> Result<Bytes, ClientError> {
        let mut decoder = ChunkedDecoder::new();
        let mut body = BytesMut::new();
        loop {
            let used = decoder.decode(&self.buf, &mut body).map_err(|cause| {
                self.reusable = false;
                let what = match &cause {
                    Cause::BadChunkSize { line, .. } => format!(
                        "bad chunk size {:?}",
                        String::from_utf8_lossy(line).trim_end()
                    ),
                    Cause::ChunkLineTooLong => "chunk size line too long".to_owned(),
                    Cause::ChunkDataNotTerminated => "chunk not followed by CRLF".to_owned(),
                    _ => "trailer section too large".to_owned(),
                };
                ClientError::new(
                    ErrorKind::Protocol,
                    format!("malformed HTTP response: {what}"),
                )
                .because(cause)
            })?;
            self.buf.advance(used);
            if decoder.is_done() {
                if !self.buf.is_empty() {
                    self.reusable = false; // bytes after the body that no request asked for
                }
                return Ok(body.freeze());
            }
            if self.fill(read_timeout).await? == 0 {
                self.reusable = false;
                if decoder.has_all_data() {
                    // Closed inside the trailer fields, after the last chunk: the body is whole.
                    return Ok(body.freeze());
                }
                return Err(ClientError::new(
                    ErrorKind::Protocol,
                    "response body ended early: connection closed inside a chunked body",
                )
                .because(decoder.ended_early()));
            }
        }
    }
}

/// A failure while reading the body, told apart from the same failure before the head.
fn in_body(mut e: ClientError) -> ClientError {
    match &mut e.cause {
        Cause::ReadTimeout { in_body, .. } | Cause::Reset { in_body } => *in_body = true,
        _ => {}
    }
    e
}

/// The response's Content-Length: None without one; every field and list member must agree.
fn content_length(headers: &Headers) -> Result<Option<u64>, LengthProblem> {
    let mut found: Option<u64> = None;
    for value in headers.get_all("content-length") {
        for member in value.split(|&b| b == b',') {
            let member = member.trim_ascii();
            if member.is_empty() || !member.iter().all(u8::is_ascii_digit) {
                return Err(LengthProblem::Invalid);
            }
            // Digits only: the parse fails only for a number too large.
            let n = std::str::from_utf8(member)
                .ok()
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or(LengthProblem::Overflow)?;
            if found.is_some_and(|first| first != n) {
                // The fields as received, joined as urllib3 quotes them.
                let all: Vec<String> = headers
                    .get_all("content-length")
                    .map(|v| String::from_utf8_lossy(v).into_owned())
                    .collect();
                return Err(LengthProblem::Conflicting(all.join(", ")));
            }
            found = Some(n);
        }
    }
    Ok(found)
}

/// What httparse's refusal of a head means: a bad status line (with the line, for the error
/// text) or a bad header field.
fn head_problem(buf: &[u8], e: httparse::Error) -> Cause {
    // http.client reads at most 64 KiB for the status line; the error text need not quote more.
    let first = &buf[..buf.len().min(64 * 1024)];
    let line = match first.iter().position(|&b| b == b'\n') {
        Some(i) => &first[..=i],
        None => first,
    };
    let text = line.strip_suffix(b"\n").unwrap_or(line);
    let text = text.strip_suffix(b"\r").unwrap_or(text);
    let problem = if !text.starts_with(b"HTTP/") {
        Some(StatusLine::NotHttp)
    } else if !(text.starts_with(b"HTTP/1.0 ") || text.starts_with(b"HTTP/1.1 ")) {
        let dot = !(text.len() > 6 && text[5].is_ascii_digit() && text[6] != b'.');
        Some(StatusLine::Version { dot })
    } else if !(text.len() >= 12
        && text[9..12].iter().all(u8::is_ascii_digit)
        && matches!(text.get(12), None | Some(b' ')))
    {
        Some(StatusLine::Status)
    } else {
        None
    };
    match (problem, e) {
        (Some(problem), _) => Cause::BadStatusLine {
            line: line.to_vec(),
            problem,
        },
        (None, httparse::Error::TooManyHeaders) => Cause::HeadTooLarge,
        (None, _) => Cause::BadHeader,
    }
}

/// A waker that does nothing, for polls whose wake-up nobody waits for.
fn noop_waker() -> &'static Waker {
    struct Noop;
    impl Wake for Noop {
        fn wake(self: Arc<Self>) {}
    }
    static NOOP: OnceLock<Waker> = OnceLock::new();
    NOOP.get_or_init(|| Waker::from(Arc::new(Noop)))
}

/// Whether a comma-separated header value contains `token` (case-insensitive).
fn has_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|part| part.trim_ascii().eq_ignore_ascii_case(token))
}

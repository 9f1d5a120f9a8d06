//! A simulated user's HTTP session, like a `requests.Session`: its own keep-alive connections and
//! cookie jar, redirects followed up to a limit, timeouts, default headers and gzip/deflate
//! decoding. Every failure comes back as a `ClientError` value; nothing here panics on bad input.

mod conn;
mod error;

use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode};
use http_body_util::{BodyExt, Full};
use url::Url;

pub use conn::TlsMode;
pub use error::{py_repr_str, ClientError, ErrorKind};

use conn::{fmt_secs, Pool, Sender};
use error::from_hyper;

/// Connect, read (idle time between bytes) and total limits. `None` waits forever, as requests does.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Timeouts {
    pub connect: Option<Duration>,
    pub read: Option<Duration>,
    pub total: Option<Duration>,
}

#[derive(Clone)]
pub struct SessionConfig {
    pub tls: TlsMode,
    pub max_redirects: u32,
    /// Sent with every request unless the request sets the same header.
    pub default_headers: Vec<(String, String)>,
    pub timeouts: Timeouts,
    /// Decode gzip/deflate bodies (and ask for them).
    pub decompress: bool,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            tls: TlsMode::Verify {
                extra_roots_pem: None,
            },
            max_redirects: 30,
            default_headers: vec![
                (
                    "User-Agent".into(),
                    concat!("horde/", env!("CARGO_PKG_VERSION")).into(),
                ),
                ("Accept".into(), "*/*".into()),
            ],
            timeouts: Timeouts::default(),
            decompress: true,
        }
    }
}

/// One request as the user asked for it (the URL is absolute).
#[derive(Clone, Debug)]
pub struct Request {
    pub method: Method,
    pub url: String,
    pub headers: Vec<(String, String)>,
    /// Cookies for this request only; they override the jar's and are not stored.
    pub cookies: Vec<(String, String)>,
    pub body: Option<Bytes>,
    pub allow_redirects: bool,
    /// Overrides the session's timeouts when set.
    pub timeouts: Option<Timeouts>,
}

impl Request {
    pub fn get(url: impl Into<String>) -> Self {
        Request::new(Method::GET, url)
    }

    pub fn new(method: Method, url: impl Into<String>) -> Self {
        Request {
            method,
            url: url.into(),
            headers: Vec::new(),
            cookies: Vec::new(),
            body: None,
            allow_redirects: true,
            timeouts: None,
        }
    }
}

/// A response that was redirected away from.
#[derive(Clone, Debug)]
pub struct Hop {
    pub status: u16,
    pub reason: String,
    pub url: String,
    pub headers: HeaderMap,
}

#[derive(Clone, Debug)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    pub version: http::Version,
    pub headers: HeaderMap,
    /// The body after content decoding.
    pub body: Bytes,
    /// The final URL, after redirects.
    pub url: String,
    pub history: Vec<Hop>,
    /// From the start of the request to the end of the last body.
    pub elapsed: Duration,
}

/// A user's session. Cheap to clone (shared state); requests on clones share connections and
/// cookies, as one `requests.Session` used from several places would.
#[derive(Clone)]
pub struct Session {
    inner: Arc<Inner>,
}

struct Inner {
    config: SessionConfig,
    tls: Option<Arc<rustls::ClientConfig>>,
    pool: Mutex<Pool>,
    jar: Mutex<cookie_store::CookieStore>,
}

/// A cookie as the jar holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CookieInfo {
    pub name: String,
    pub value: String,
    pub domain: String,
    pub path: String,
}

impl Session {
    /// A session with its own pool and jar. Fails only if the TLS roots given cannot be read.
    pub fn new(config: SessionConfig) -> Result<Session, ClientError> {
        let tls = Some(conn::tls_config(&config.tls)?);
        Ok(Session {
            inner: Arc::new(Inner {
                config,
                tls,
                pool: Mutex::new(Pool::default()),
                jar: Mutex::new(cookie_store::CookieStore::default()),
            }),
        })
    }

    pub fn config(&self) -> &SessionConfig {
        &self.inner.config
    }

    /// Runs the request, following redirects when asked. Must run on a tokio runtime.
    pub async fn execute(&self, request: Request) -> Result<Response, ClientError> {
        let start = Instant::now();
        let timeouts = request.timeouts.unwrap_or(self.inner.config.timeouts);
        let result = match timeouts.total {
            Some(limit) => tokio::time::timeout(limit, self.run(request, timeouts, start))
                .await
                .unwrap_or_else(|_| {
                    Err(ClientError::new(
                        ErrorKind::TotalTimeout,
                        format!("Request timed out. (total timeout={})", fmt_secs(limit)),
                    ))
                }),
            None => self.run(request, timeouts, start).await,
        };
        result.map_err(|mut e| {
            e.elapsed = start.elapsed();
            e
        })
    }

    async fn run(
        &self,
        request: Request,
        timeouts: Timeouts,
        start: Instant,
    ) -> Result<Response, ClientError> {
        let mut url = Url::parse(&request.url).map_err(|e| {
            ClientError::new(
                ErrorKind::InvalidUrl,
                format!("Invalid URL {:?}: {e}", request.url),
            )
        })?;
        let mut method = request.method;
        let mut body = request.body;
        let mut headers = self.build_headers(&request.headers)?;
        let mut history = Vec::new();
        loop {
            let (parts, raw_body) = self
                .send(
                    &method,
                    &url,
                    &headers,
                    &request.cookies,
                    body.clone(),
                    timeouts,
                )
                .await?;
            self.store_cookies(&parts.headers, &url);
            let status = parts.status;
            let reason = reason_phrase(&parts);
            let location = parts
                .headers
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok());
            let redirect_to = match location {
                Some(loc) if request.allow_redirects && status.is_redirection() => {
                    Some(url.join(loc).map_err(|e| {
                        ClientError::new(
                            ErrorKind::InvalidUrl,
                            format!("Invalid redirect location {loc:?}: {e}"),
                        )
                    })?)
                }
                _ => None,
            };
            let Some(next) = redirect_to else {
                let body = self.decode(&parts.headers, raw_body)?;
                return Ok(Response {
                    status: status.as_u16(),
                    reason,
                    version: parts.version,
                    headers: parts.headers,
                    body,
                    url: url.into(),
                    history,
                    elapsed: start.elapsed(),
                });
            };
            if history.len() as u32 >= self.inner.config.max_redirects {
                return Err(ClientError::new(
                    ErrorKind::TooManyRedirects,
                    format!("Exceeded {} redirects.", self.inner.config.max_redirects),
                ));
            }
            // requests' rules: 303 turns anything but HEAD into GET; 301/302 turn POST into GET.
            let to_get = (status == StatusCode::SEE_OTHER && method != Method::HEAD)
                || ((status == StatusCode::FOUND || status == StatusCode::MOVED_PERMANENTLY)
                    && method == Method::POST);
            if to_get {
                method = Method::GET;
                body = None;
                headers.remove(header::CONTENT_TYPE);
                headers.remove(header::CONTENT_LENGTH);
            }
            if next.host_str() != url.host_str() {
                headers.remove(header::AUTHORIZATION);
            }
            history.push(Hop {
                status: status.as_u16(),
                reason,
                url: url.into(),
                headers: parts.headers,
            });
            url = next;
        }
    }

    fn build_headers(&self, extra: &[(String, String)]) -> Result<HeaderMap, ClientError> {
        let mut map = HeaderMap::new();
        for (k, v) in &self.inner.config.default_headers {
            map.insert(header_name(k)?, header_value(k, v)?);
        }
        if self.inner.config.decompress {
            map.insert(
                header::ACCEPT_ENCODING,
                HeaderValue::from_static("gzip, deflate"),
            );
        }
        // A request's header replaces the default of the same name; repeats within the request add.
        let mut replaced: Vec<HeaderName> = Vec::new();
        for (k, v) in extra {
            let name = header_name(k)?;
            let value = header_value(k, v)?;
            if replaced.contains(&name) {
                map.append(name, value);
            } else {
                map.insert(name.clone(), value);
                replaced.push(name);
            }
        }
        Ok(map)
    }

    /// One request/response exchange on a pooled or new connection; the body is read in full.
    async fn send(
        &self,
        method: &Method,
        url: &Url,
        headers: &HeaderMap,
        request_cookies: &[(String, String)],
        body: Option<Bytes>,
        timeouts: Timeouts,
    ) -> Result<(http::response::Parts, Bytes), ClientError> {
        let https = match url.scheme() {
            "http" => false,
            "https" => true,
            other => {
                return Err(ClientError::new(
                    ErrorKind::InvalidUrl,
                    format!("No connection adapters were found for scheme {other:?}"),
                ))
            }
        };
        let host = url
            .host_str()
            .ok_or_else(|| ClientError::new(ErrorKind::InvalidUrl, format!("No host in {url}")))?;
        let port = url.port_or_known_default().unwrap_or(80);

        let build =
            || self.build_request(method, url, host, headers, request_cookies, body.clone());

        // A pooled connection may have been closed by the server while idle; if it fails before
        // any response arrived, the request is sent once more on a fresh connection.
        let pooled = self.inner.pool.lock().unwrap().checkout(https, host, port);
        let reused = pooled.is_some();
        let mut sender = match pooled {
            Some(s) => s,
            None => self.connect(https, host, port, timeouts).await?,
        };
        let sent = with_timeout(
            timeouts.read,
            sender.send_request(build()?),
            read_timeout_err,
        )
        .await?;
        let response = match sent {
            Ok(resp) => resp,
            Err(e) if reused && is_stale(&e) => {
                sender = self.connect(https, host, port, timeouts).await?;
                with_timeout(
                    timeouts.read,
                    sender.send_request(build()?),
                    read_timeout_err,
                )
                .await?
                .map_err(|e| from_hyper(&e))?
            }
            Err(e) => return Err(from_hyper(&e)),
        };
        let (parts, mut incoming) = response.into_parts();

        let mut buf = BytesMut::new();
        if let Some(len) = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
        {
            buf.reserve(len.min(64 << 20));
        }
        loop {
            let frame = with_timeout(timeouts.read, incoming.frame(), read_timeout_err).await?;
            match frame {
                None => break,
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        buf.extend_from_slice(&data);
                    }
                }
                Some(Err(e)) => {
                    let mut err = from_hyper(&e);
                    if err.kind == ErrorKind::Protocol {
                        err.message = format!("response body ended early: {}", err.message);
                    }
                    return Err(err);
                }
            }
        }
        let keep = !parts
            .headers
            .get(header::CONNECTION)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
        if keep {
            self.inner
                .pool
                .lock()
                .unwrap()
                .checkin(https, host, port, sender);
        }
        Ok((parts, buf.freeze()))
    }

    fn build_request(
        &self,
        method: &Method,
        url: &Url,
        host: &str,
        headers: &HeaderMap,
        request_cookies: &[(String, String)],
        body: Option<Bytes>,
    ) -> Result<http::Request<Full<Bytes>>, ClientError> {
        let path = match url.query() {
            Some(q) => format!("{}?{}", url.path(), q),
            None => url.path().to_owned(),
        };
        let mut builder = http::Request::builder()
            .method(method.clone())
            .uri(path.as_str());
        let map = builder.headers_mut().expect("fresh builder has headers");
        *map = headers.clone();
        if !map.contains_key(header::HOST) {
            let host_header = match url.port() {
                Some(p) => format!("{host}:{p}"),
                None => host.to_owned(),
            };
            map.insert(header::HOST, header_value("Host", &host_header)?);
        }
        if !map.contains_key(header::COOKIE) {
            if let Some(cookie) = self.cookie_header(url, request_cookies) {
                map.insert(header::COOKIE, header_value("Cookie", &cookie)?);
            }
        }
        let body = body.unwrap_or_default();
        if !body.is_empty() || matches!(*method, Method::POST | Method::PUT | Method::PATCH) {
            map.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        }
        builder.body(Full::new(body)).map_err(|e| {
            ClientError::new(ErrorKind::InvalidUrl, format!("cannot build request: {e}"))
        })
    }

    async fn connect(
        &self,
        https: bool,
        host: &str,
        port: u16,
        timeouts: Timeouts,
    ) -> Result<Sender, ClientError> {
        conn::connect(https, host, port, self.inner.tls.as_ref(), timeouts.connect).await
    }

    fn cookie_header(&self, url: &Url, request_cookies: &[(String, String)]) -> Option<String> {
        let jar = self.inner.jar.lock().unwrap();
        let mut out = String::new();
        for (name, value) in jar.get_request_values(url) {
            if request_cookies.iter().any(|(n, _)| n == name) {
                continue;
            }
            push_cookie(&mut out, name, value);
        }
        for (name, value) in request_cookies {
            push_cookie(&mut out, name, value);
        }
        (!out.is_empty()).then_some(out)
    }

    fn store_cookies(&self, headers: &HeaderMap, url: &Url) {
        let mut set_cookies = headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| std::str::from_utf8(v.as_bytes()).ok())
            .filter_map(|s| cookie::Cookie::parse(s.to_owned()).ok())
            .peekable();
        if set_cookies.peek().is_some() {
            self.inner
                .jar
                .lock()
                .unwrap()
                .store_response_cookies(set_cookies, url);
        }
    }

    fn decode(&self, headers: &HeaderMap, body: Bytes) -> Result<Bytes, ClientError> {
        if !self.inner.config.decompress || body.is_empty() {
            return Ok(body);
        }
        let Some(encoding) = headers.get(header::CONTENT_ENCODING) else {
            return Ok(body);
        };
        let encoding = encoding.to_str().unwrap_or("").trim().to_ascii_lowercase();
        let mut out = Vec::with_capacity(body.len() * 4);
        let result = match encoding.as_str() {
            "gzip" | "x-gzip" => flate2::read::MultiGzDecoder::new(&body[..]).read_to_end(&mut out),
            // "deflate" is meant to be zlib-wrapped, but some servers send raw deflate.
            "deflate" => flate2::read::ZlibDecoder::new(&body[..])
                .read_to_end(&mut out)
                .or_else(|_| {
                    out.clear();
                    flate2::read::DeflateDecoder::new(&body[..]).read_to_end(&mut out)
                }),
            _ => return Ok(body),
        };
        result.map_err(|e| {
            ClientError::new(
                ErrorKind::Decode,
                format!("Received response with content-encoding: {encoding}, but failed to decode it: {e}"),
            )
        })?;
        Ok(Bytes::from(out))
    }

    /// The jar's cookies, optionally only those sent to `url`.
    pub fn cookies(&self) -> Vec<CookieInfo> {
        let jar = self.inner.jar.lock().unwrap();
        jar.iter_unexpired()
            .map(|c| CookieInfo {
                name: c.name().to_owned(),
                value: c.value().to_owned(),
                domain: c
                    .domain
                    .as_cow()
                    .map(|d| d.into_owned())
                    .unwrap_or_default(),
                path: String::from(&c.path),
            })
            .collect()
    }

    /// Puts a cookie into the jar as if `url` had set it.
    pub fn set_cookie(&self, url: &str, set_cookie: &str) -> Result<(), ClientError> {
        let url = Url::parse(url)
            .map_err(|e| ClientError::new(ErrorKind::InvalidUrl, format!("{url:?}: {e}")))?;
        let mut jar = self.inner.jar.lock().unwrap();
        jar.parse(set_cookie, &url).map_err(|e| {
            ClientError::new(
                ErrorKind::InvalidUrl,
                format!("bad cookie {set_cookie:?}: {e}"),
            )
        })?;
        Ok(())
    }

    /// Removes cookies by name (any domain and path), or all when `name` is None.
    pub fn clear_cookies(&self, name: Option<&str>) {
        let mut jar = self.inner.jar.lock().unwrap();
        match name {
            None => jar.clear(),
            Some(name) => {
                let doomed: Vec<(String, String)> = jar
                    .iter_any()
                    .filter(|c| c.name() == name)
                    .map(|c| {
                        (
                            c.domain
                                .as_cow()
                                .map(|d| d.into_owned())
                                .unwrap_or_default(),
                            String::from(&c.path),
                        )
                    })
                    .collect();
                for (domain, path) in doomed {
                    jar.remove(&domain, &path, name);
                }
            }
        }
    }

    /// Closes idle connections (the next request opens a new one).
    pub fn close(&self) {
        self.inner.pool.lock().unwrap().clear();
    }
}

fn push_cookie(out: &mut String, name: &str, value: &str) {
    if !out.is_empty() {
        out.push_str("; ");
    }
    out.push_str(name);
    out.push('=');
    out.push_str(value);
}

fn reason_phrase(parts: &http::response::Parts) -> String {
    if let Some(r) = parts.extensions.get::<hyper::ext::ReasonPhrase>() {
        return String::from_utf8_lossy(r.as_bytes()).into_owned();
    }
    parts.status.canonical_reason().unwrap_or("").to_owned()
}

fn header_name(k: &str) -> Result<HeaderName, ClientError> {
    HeaderName::from_bytes(k.as_bytes())
        .map_err(|_| ClientError::new(ErrorKind::InvalidUrl, format!("Invalid header name {k:?}")))
}

fn header_value(k: &str, v: &str) -> Result<HeaderValue, ClientError> {
    HeaderValue::from_str(v).map_err(|_| {
        ClientError::new(
            ErrorKind::InvalidUrl,
            format!("Invalid value for header {k:?}: {v:?}"),
        )
    })
}

/// A pooled connection that the server closed while it sat idle.
fn is_stale(e: &hyper::Error) -> bool {
    if e.is_canceled() || e.is_incomplete_message() || e.is_closed() {
        return true;
    }
    let err = from_hyper(e);
    err.kind == ErrorKind::Reset
}

fn read_timeout_err(limit: Duration) -> ClientError {
    ClientError::new(
        ErrorKind::ReadTimeout,
        format!("Read timed out. (read timeout={})", fmt_secs(limit)),
    )
}

async fn with_timeout<F: std::future::Future>(
    limit: Option<Duration>,
    fut: F,
    on_timeout: fn(Duration) -> ClientError,
) -> Result<F::Output, ClientError> {
    match limit {
        Some(t) => tokio::time::timeout(t, fut)
            .await
            .map_err(|_| on_timeout(t)),
        None => Ok(fut.await),
    }
}

/// How a finished request counts in the stats: response time (ms), content length and the error
/// text, following the failure rules of Locust's HttpUser (status >= 400 fails) or FastHttpUser
/// (only 2xx and the usual redirect codes succeed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailurePolicy {
    HttpUser,
    FastHttpUser,
}

pub struct Outcome {
    pub response_time_ms: f64,
    pub content_length: u64,
    pub error: Option<String>,
}

impl FailurePolicy {
    pub fn outcome(self, result: &Result<Response, ClientError>, name: &str) -> Outcome {
        match result {
            Ok(r) => Outcome {
                response_time_ms: r.elapsed.as_secs_f64() * 1000.0,
                content_length: r.body.len() as u64,
                error: self.status_error(r.status, &r.reason, name),
            },
            Err(e) => Outcome {
                response_time_ms: e.elapsed.as_secs_f64() * 1000.0,
                content_length: 0,
                error: Some(e.locust_repr()),
            },
        }
    }

    /// The error text for a status this user type counts as failed, None if it succeeded.
    pub fn status_error(self, status: u16, reason: &str, name: &str) -> Option<String> {
        match self {
            FailurePolicy::HttpUser => {
                let side = match status {
                    400..=499 => "Client",
                    500..=599 => "Server",
                    _ => return None,
                };
                Some(format!(
                    "HTTPError({})",
                    py_repr_str(&format!("{status} {side} Error: {reason} for url: {name}"))
                ))
            }
            FailurePolicy::FastHttpUser => {
                if matches!(status, 200..=206 | 301 | 302 | 303 | 304 | 307 | 308) {
                    None
                } else {
                    Some(format!(
                        "BadStatusCode({}, code={status})",
                        py_repr_str(name)
                    ))
                }
            }
        }
    }
}

//! A plain HTTP/1.1 client with a simulated user's session state, like a `requests.Session`: its
//! own keep-alive connections and cookie jar, redirects followed up to a limit, timeouts,
//! gzip/deflate/brotli decoding and HTTP proxies. It sends the headers it is given (plus Host,
//! Cookie and Content-Length) and knows nothing of Locust: what a result means to Locust is
//! decided in `crate::locust`.
//! Every failure comes back as a `ClientError` value; nothing here panics on bad input.

mod chunked;
mod error;
mod h1;
mod headers;
mod pool;
mod proxy;
mod tls;

use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Method;
use url::Url;

pub use error::{Cause, ClientError, ErrorKind, LengthProblem, StatusLine};
pub use headers::Headers;
pub use proxy::{Proxies, Proxy};
pub use tls::TlsMode;

use crate::lock;
pub(crate) use error::fmt_secs;
use pool::{Origin, Pool};

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
    pub timeouts: Timeouts,
    /// Decode gzip/deflate/brotli bodies (asking for them is up to the request's headers).
    pub decompress: bool,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            tls: TlsMode::Verify {
                extra_roots_pem: None,
            },
            max_redirects: 30,
            timeouts: Timeouts::default(),
            decompress: true,
        }
    }
}

/// Header name and value pairs, in the order they are sent. Shared: a session sends the same
/// ones with most of its requests, and every response keeps those it was asked with.
pub type HeaderPairs = Arc<[(String, String)]>;

/// One request as the user asked for it (the URL is absolute).
#[derive(Clone, Debug)]
pub struct Request {
    pub method: Method,
    pub url: String,
    pub headers: HeaderPairs,
    /// Cookies for this request only; they override the jar's and are not stored.
    pub cookies: Vec<(String, String)>,
    pub body: Option<Bytes>,
    pub allow_redirects: bool,
    /// Overrides the session's timeouts when set.
    pub timeouts: Option<Timeouts>,
    /// The proxies this request may go through (each hop of a redirect chooses again); None
    /// goes direct.
    pub proxies: Option<Arc<Proxies>>,
    /// Overrides the session's redirect limit when set.
    pub max_redirects: Option<u32>,
}

impl Request {
    pub fn get(url: impl Into<String>) -> Self {
        Request::new(Method::GET, url)
    }

    pub fn new(method: Method, url: impl Into<String>) -> Self {
        Request {
            method,
            url: url.into(),
            headers: Arc::new([]),
            cookies: Vec::new(),
            body: None,
            allow_redirects: true,
            timeouts: None,
            proxies: None,
            max_redirects: None,
        }
    }
}

/// The request as sent to one URL: redirects may change its method, drop its body and some
/// headers (see `Session::run`). Its URL is that of the response it got.
#[derive(Clone, Debug)]
pub struct Sent {
    pub method: Method,
    pub headers: HeaderPairs,
    pub body: Bytes,
}

/// A response that was redirected away from.
#[derive(Clone, Debug)]
pub struct Hop {
    pub status: u16,
    pub reason: String,
    pub url: String,
    pub headers: Headers,
    /// The request that got this response.
    pub sent: Sent,
}

#[derive(Clone, Debug)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    pub version: http::Version,
    pub headers: Headers,
    /// The body after content decoding.
    pub body: Bytes,
    /// The final URL, after redirects.
    pub url: String,
    pub history: Vec<Hop>,
    /// The request that got this response (after any redirects).
    pub sent: Sent,
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
    /// The host it was set by, or for a Domain cookie the domain without a leading dot.
    pub domain: String,
    /// Whether the cookie names its domain (sent to subdomains too), not only the host that set it.
    pub domain_specified: bool,
    pub path: String,
    pub secure: bool,
    pub http_only: bool,
    /// Expiry in seconds since the epoch; None for a session cookie.
    pub expires: Option<i64>,
}

impl Session {
    /// A session with its own pool and jar. Fails only if the TLS roots given cannot be read.
    pub fn new(config: SessionConfig) -> Result<Session, ClientError> {
        let tls = Some(tls::tls_config(&config.tls)?);
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
            Some(limit) => Box::pin(tokio::time::timeout(
                limit,
                self.run(request, timeouts, start),
            ))
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
        let mut url = request.url;
        let mut method = request.method;
        let mut body = request.body.unwrap_or_default();
        let mut headers = request.headers;
        let mut history = Vec::new();
        loop {
            let target = Target::parse(&url)?;
            let proxy = match &request.proxies {
                Some(proxies) => proxies.select(&target)?,
                None => None,
            };
            // Boxed (as is the roundtrip in `send`): kept inline, the request's future grew to 2 KiB,
            // which was copied whole each time it moved into its task and was too big for the
            // allocator's small-block caches. Each part now stays under 1 KiB.
            let outgoing = Outgoing {
                method: &method,
                headers: &headers,
                cookies: &request.cookies,
                body: &body,
            };
            let (head, raw_body) = Box::pin(self.send(&outgoing, &target, proxy, timeouts))
                .await
                .map_err(|e| e.at(&url))?;
            if head.headers.contains("set-cookie") {
                self.store_cookies(&head.headers, &url);
            }
            let sent = Sent {
                method: method.clone(),
                headers: headers.clone(),
                body: body.clone(),
            };
            let location = head
                .headers
                .get("location")
                .filter(|_| request.allow_redirects && (300..400).contains(&head.status))
                .and_then(|v| std::str::from_utf8(v).ok());
            let Some(location) = location else {
                let body = self.decode(&head.headers, raw_body)?;
                return Ok(Response {
                    status: head.status,
                    reason: head.reason,
                    version: head.version,
                    headers: head.headers,
                    body,
                    url,
                    history,
                    sent,
                    elapsed: start.elapsed(),
                });
            };
            let next = Url::parse(&url)
                .and_then(|u| u.join(location))
                .map_err(|e| {
                    ClientError::new(
                        ErrorKind::InvalidUrl,
                        format!("Invalid redirect location {location:?}: {e}"),
                    )
                })?;
            let max_redirects = request
                .max_redirects
                .unwrap_or(self.inner.config.max_redirects);
            if history.len() as u32 >= max_redirects {
                return Err(ClientError::new(
                    ErrorKind::TooManyRedirects,
                    format!("Exceeded {max_redirects} redirects."),
                ));
            }
            // requests' rules: 303 turns anything but HEAD into GET; 301/302 turn POST into GET.
            let status = head.status;
            if (status == 303 && method != Method::HEAD)
                || ((status == 301 || status == 302) && method == Method::POST)
            {
                method = Method::GET;
                body = Bytes::new();
                headers = without(&headers, |k| {
                    k.eq_ignore_ascii_case("content-type")
                        || k.eq_ignore_ascii_case("content-length")
                });
            }
            if next.host_str() != Some(target.origin.host)
                || next.port_or_known_default() != Some(target.origin.port)
            {
                headers = without(&headers, |k| k.eq_ignore_ascii_case("authorization"));
            }
            history.push(Hop {
                status,
                reason: head.reason,
                url,
                headers: head.headers,
                sent,
            });
            url = next.into();
        }
    }

    /// One request/response exchange on a pooled or new connection; the body is read in full.
    /// Through a proxy, an http:// URL is asked of the proxy itself (its connections serve any
    /// origin) and an https:// one goes through a tunnel to its origin (a connection per origin).
    async fn send(
        &self,
        outgoing: &Outgoing<'_>,
        target: &Target<'_>,
        proxy: Option<&Proxy>,
        timeouts: Timeouts,
    ) -> Result<(h1::Head, Bytes), ClientError> {
        let (origin, forward) = match proxy {
            None => (target.origin, None),
            Some(p) if !target.origin.https => (
                Origin {
                    https: false,
                    host: &p.host,
                    port: p.port,
                    via: None,
                },
                Some(p),
            ),
            Some(p) => (
                Origin {
                    via: Some(p),
                    ..target.origin
                },
                None,
            ),
        };
        let head_bytes = self.serialize(outgoing, target, forward)?;
        let body = outgoing.body;
        let is_head = *outgoing.method == Method::HEAD;
        let origin = &origin;

        // A pooled connection may have been closed by the server while idle; if it fails before
        // any response arrived, the request is sent once more on a fresh connection.
        let pooled = lock(&self.inner.pool).checkout(origin);
        let reused = pooled.is_some();
        let mut conn = match pooled {
            Some(c) => c,
            None => Box::pin(self.connect(origin, timeouts, forward.is_some())).await?,
        };
        let mut result = Box::pin(conn.roundtrip(&head_bytes, body, is_head, timeouts.read)).await;
        if let Err(failed) = &result {
            if reused && failed.retryable {
                conn = Box::pin(self.connect(origin, timeouts, forward.is_some())).await?;
                result = Box::pin(conn.roundtrip(&head_bytes, body, is_head, timeouts.read)).await;
            }
        }
        let (head, body) = result.map_err(|f| f.error)?;
        if conn.reusable {
            lock(&self.inner.pool).checkin(origin, conn);
        }
        Ok((head, body))
    }

    /// The request head, written straight into bytes: request line, Host, the request's headers,
    /// cookies, length. To a `forward` proxy the request line carries the absolute URL, and the
    /// proxy's credentials go along.
    fn serialize(
        &self,
        outgoing: &Outgoing<'_>,
        target: &Target<'_>,
        forward: Option<&Proxy>,
    ) -> Result<Vec<u8>, ClientError> {
        let Outgoing {
            method,
            headers,
            cookies: request_cookies,
            body,
        } = *outgoing;
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(method.as_str().as_bytes());
        out.push(b' ');
        if forward.is_some() {
            out.extend_from_slice(b"http://");
            out.extend_from_slice(target.host_header.as_bytes());
        }
        out.extend_from_slice(target.path_and_query.as_bytes());
        out.extend_from_slice(b" HTTP/1.1\r\n");
        let has = |name: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(name));
        if !has("host") {
            out.extend_from_slice(b"Host: ");
            out.extend_from_slice(target.host_header.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        for (k, v) in headers {
            check_header(k, v)?;
            push_header(&mut out, k, v);
        }
        if let Some(auth) = forward.and_then(|p| p.authorization.as_deref()) {
            if !has("proxy-authorization") {
                push_header(&mut out, "Proxy-Authorization", auth);
            }
        }
        if !has("cookie") {
            if let Some(cookie) = self.cookie_header(target.url, request_cookies) {
                check_header("Cookie", &cookie)?;
                push_header(&mut out, "Cookie", &cookie);
            }
        }
        if !has("content-length")
            && (!body.is_empty() || matches!(*method, Method::POST | Method::PUT | Method::PATCH))
        {
            out.extend_from_slice(b"Content-Length: ");
            out.extend_from_slice(body.len().to_string().as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        Ok(out)
    }

    /// Opening a connection (DNS, TCP, a proxy's tunnel, TLS handshake) needs a large future;
    /// callers box it so that every request's future, which is allocated and moved per request,
    /// stays small. `to_proxy`: the origin is a proxy that takes the requests themselves.
    async fn connect(
        &self,
        origin: &Origin<'_>,
        timeouts: Timeouts,
        to_proxy: bool,
    ) -> Result<h1::Conn, ClientError> {
        let tls = self.inner.tls.as_ref();
        let open = async {
            let proxy_failed = |mut e: ClientError| {
                e.via_proxy = true;
                e
            };
            match origin.via {
                None if to_proxy => h1::Conn::open(origin, tls).await.map_err(proxy_failed),
                None => h1::Conn::open(origin, tls).await,
                Some(proxy) => {
                    let tcp = h1::connect_tcp(&proxy.host, proxy.port)
                        .await
                        .map_err(proxy_failed)?;
                    let authority = format!("{}:{}", origin.host, origin.port);
                    let tcp = proxy::tunnel(tcp, &authority, proxy)
                        .await
                        .map_err(proxy_failed)?;
                    h1::Conn::establish(tcp, origin, tls).await
                }
            }
        };
        match timeouts.connect {
            Some(t) => tokio::time::timeout(t, open).await.unwrap_or_else(|_| {
                Err(ClientError::new(
                    ErrorKind::ConnectTimeout,
                    format!(
                        "Connection to {} timed out. (connect timeout={})",
                        origin.host,
                        fmt_secs(t)
                    ),
                )
                .because(Cause::ConnectTimeout { timeout: t }))
            }),
            None => open.await,
        }
    }

    fn cookie_header(&self, url: &str, request_cookies: &[(String, String)]) -> Option<String> {
        let jar = lock(&self.inner.jar);
        let mut out = String::new();
        // Parsing the URL for cookie matching costs more than the rest of a request; skip it
        // while the jar is empty, as it is for most users of most load tests.
        let parsed = if jar.iter_any().next().is_some() {
            Url::parse(url).ok()
        } else {
            None
        };
        for (name, value) in parsed.iter().flat_map(|u| jar.get_request_values(u)) {
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

    fn store_cookies(&self, headers: &Headers, url: &str) {
        let Ok(url) = Url::parse(url) else {
            return;
        };
        let mut set_cookies = headers
            .get_all("set-cookie")
            .filter_map(|v| std::str::from_utf8(v).ok())
            .filter_map(|s| cookie::Cookie::parse(s.to_owned()).ok())
            .peekable();
        if set_cookies.peek().is_some() {
            lock(&self.inner.jar).store_response_cookies(set_cookies, &url);
        }
    }

    /// The body as sent before its content codings (see `decode_content`).
    fn decode(&self, headers: &Headers, body: Bytes) -> Result<Bytes, ClientError> {
        if !self.inner.config.decompress || body.is_empty() {
            return Ok(body);
        }
        match headers.get("content-encoding") {
            Some(encoding) => decode_content(std::str::from_utf8(encoding).unwrap_or(""), body),
            None => Ok(body),
        }
    }

    /// The jar's cookies, optionally only those sent to `url`.
    pub fn cookies(&self) -> Vec<CookieInfo> {
        let jar = lock(&self.inner.jar);
        jar.iter_unexpired()
            .map(|c| CookieInfo {
                name: c.name().to_owned(),
                value: c.value().to_owned(),
                domain: c
                    .domain
                    .as_cow()
                    .map(|d| d.into_owned())
                    .unwrap_or_default(),
                domain_specified: matches!(c.domain, cookie_store::CookieDomain::Suffix(_)),
                path: String::from(&c.path),
                secure: c.secure().unwrap_or(false),
                http_only: c.http_only().unwrap_or(false),
                expires: match &c.expires {
                    cookie_store::CookieExpiration::AtUtc(at) => Some(at.unix_timestamp()),
                    cookie_store::CookieExpiration::SessionEnd => None,
                },
            })
            .collect()
    }

    /// Puts a cookie into the jar as if `url` had set it.
    pub fn set_cookie(&self, url: &str, set_cookie: &str) -> Result<(), ClientError> {
        let url = Url::parse(url)
            .map_err(|e| ClientError::new(ErrorKind::InvalidUrl, format!("{url:?}: {e}")))?;
        let mut jar = lock(&self.inner.jar);
        jar.parse(set_cookie, &url).map_err(|e| {
            ClientError::new(
                ErrorKind::InvalidHeader,
                format!("bad cookie {set_cookie:?}: {e}"),
            )
        })?;
        Ok(())
    }

    /// Removes the cookies that match every filter given (name, domain as `cookies()` gives it,
    /// path); all of them when none is.
    pub fn clear_cookies(&self, name: Option<&str>, domain: Option<&str>, path: Option<&str>) {
        let mut jar = lock(&self.inner.jar);
        if name.is_none() && domain.is_none() && path.is_none() {
            jar.clear();
            return;
        }
        let doomed: Vec<(String, String, String)> = jar
            .iter_any()
            .map(|c| {
                (
                    c.domain
                        .as_cow()
                        .map(|d| d.into_owned())
                        .unwrap_or_default(),
                    String::from(&c.path),
                    c.name().to_owned(),
                )
            })
            .filter(|(d, p, n)| {
                name.is_none_or(|x| x == n)
                    && domain.is_none_or(|x| x == d)
                    && path.is_none_or(|x| x == p)
            })
            .collect();
        for (domain, path, name) in doomed {
            jar.remove(&domain, &path, &name);
        }
    }

    /// Closes idle connections (the next request opens a new one).
    pub fn close(&self) {
        lock(&self.inner.pool).clear();
    }
}

/// The body as sent before the content codings `encoding` (a Content-Encoding value) names:
/// each of gzip, deflate and br undone, last applied first (as urllib3 does for
/// `Content-Encoding: gzip, br`). A coding the engine does not know leaves the body as it came,
/// as requests does.
fn decode_content(encoding: &str, body: Bytes) -> Result<Bytes, ClientError> {
    let encoding = encoding.to_ascii_lowercase();
    let codings: Vec<&str> = encoding
        .split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty() && *c != "identity")
        .collect();
    if codings
        .iter()
        .any(|c| !matches!(*c, "gzip" | "x-gzip" | "deflate" | "br"))
    {
        return Ok(body);
    }
    let mut body = body;
    for coding in codings.iter().rev() {
        body = decode_one(coding, &body).map_err(|e| {
            ClientError::new(
                ErrorKind::Decode,
                format!("Received response with content-encoding: {encoding}, but failed to decode it: {e}"),
            )
        })?;
    }
    Ok(body)
}

/// What one hop of a request sends, as `Session::run` holds it for the current URL.
#[derive(Clone, Copy)]
struct Outgoing<'a> {
    method: &'a Method,
    headers: &'a [(String, String)],
    /// The request's own cookies, sent with the jar's.
    cookies: &'a [(String, String)],
    body: &'a Bytes,
}

/// Undoes one content coding (one of those `decode_content` accepts).
fn decode_one(coding: &str, body: &[u8]) -> std::io::Result<Bytes> {
    let mut out = Vec::with_capacity(body.len() * 4);
    match coding {
        "gzip" | "x-gzip" => flate2::read::MultiGzDecoder::new(body).read_to_end(&mut out),
        // "deflate" is meant to be zlib-wrapped, but some servers send raw deflate.
        "deflate" => flate2::read::ZlibDecoder::new(body)
            .read_to_end(&mut out)
            .or_else(|_| {
                out.clear();
                flate2::read::DeflateDecoder::new(body).read_to_end(&mut out)
            }),
        // 4 KiB: the decoder's input buffer, as its own examples use.
        _ => brotli_decompressor::Decompressor::new(body, 4096).read_to_end(&mut out),
    }?;
    Ok(Bytes::from(out))
}

fn push_cookie(out: &mut String, name: &str, value: &str) {
    if !out.is_empty() {
        out.push_str("; ");
    }
    out.push_str(name);
    out.push('=');
    out.push_str(value);
}

/// The parts of an absolute http(s) URL that a request needs, borrowed from the URL string.
struct Target<'a> {
    url: &'a str,
    origin: Origin<'a>,
    /// The Host header: host, plus the port when it is not the scheme's default.
    host_header: &'a str,
    path_and_query: std::borrow::Cow<'a, str>,
}

impl<'a> Target<'a> {
    fn parse(url: &'a str) -> Result<Target<'a>, ClientError> {
        let invalid = |why: &str| {
            ClientError::new(ErrorKind::InvalidUrl, format!("Invalid URL {url:?}: {why}"))
        };
        let (https, rest) = if let Some(r) = strip_prefix_ci(url, "http://") {
            (false, r)
        } else if let Some(r) = strip_prefix_ci(url, "https://") {
            (true, r)
        } else if let Some((scheme, _)) = url.split_once("://") {
            return Err(ClientError::new(
                ErrorKind::InvalidUrl,
                format!("No connection adapters were found for {url:?} (scheme {scheme:?})"),
            ));
        } else {
            return Err(invalid("no scheme supplied (http:// or https://)"));
        };
        let authority_end = rest
            .bytes()
            .position(|b| matches!(b, b'/' | b'?' | b'#'))
            .unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        // user:password@ is turned into an Authorization header on the Python side. Byte loops
        // here and for the port: on a host of a few bytes, str's searches cost more to set up.
        let host_port = match authority.bytes().rposition(|b| b == b'@') {
            Some(at) => &authority[at + 1..],
            None => authority,
        };
        let (host, port) = if host_port.starts_with('[') {
            let close = host_port
                .find(']')
                .ok_or_else(|| invalid("unclosed IPv6 bracket"))?;
            (&host_port[..=close], &host_port[close + 1..])
        } else {
            match host_port.bytes().rposition(|b| b == b':') {
                Some(i) => (&host_port[..i], &host_port[i..]),
                None => (host_port, ""),
            }
        };
        if host.is_empty() {
            return Err(invalid("no host"));
        }
        let default_port = if https { 443 } else { 80 };
        let port = match port.strip_prefix(':') {
            None if port.is_empty() => default_port,
            Some("") => default_port,
            Some(p) => p.parse::<u16>().map_err(|_| invalid("bad port"))?,
            None => return Err(invalid("bad host")),
        };
        let mut path_and_query = &rest[authority_end..];
        if let Some(i) = path_and_query.find('#') {
            path_and_query = &path_and_query[..i];
        }
        let path_and_query = if path_and_query.bytes().all(|b| b.is_ascii_graphic()) {
            if path_and_query.is_empty() {
                std::borrow::Cow::Borrowed("/")
            } else if path_and_query.starts_with('?') {
                std::borrow::Cow::Owned(format!("/{path_and_query}"))
            } else {
                std::borrow::Cow::Borrowed(path_and_query)
            }
        } else {
            // Spaces or non-ASCII: let the url crate percent-encode as browsers and requests do.
            let parsed = Url::parse(url).map_err(|e| invalid(&e.to_string()))?;
            std::borrow::Cow::Owned(match parsed.query() {
                Some(q) => format!("{}?{}", parsed.path(), q),
                None => parsed.path().to_owned(),
            })
        };
        let host_header = if port == default_port {
            host
        } else {
            host_port
        };
        Ok(Target {
            url,
            origin: Origin {
                https,
                host,
                port,
                via: None,
            },
            host_header,
            path_and_query,
        })
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    (s.len() >= prefix.len()
        && s.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes()))
    .then(|| &s[prefix.len()..])
}

fn push_header(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// The bytes allowed in a header name (RFC 9110 tokens): visible ASCII except separators.
const TOKEN: [bool; 256] = {
    const SEPARATORS: &[u8] = b"()<>@,;:\\\"/[]?={} \t";
    let mut table = [false; 256];
    let mut b = 0x21;
    while b < 0x7f {
        table[b] = true;
        b += 1;
    }
    let mut i = 0;
    while i < SEPARATORS.len() {
        table[SEPARATORS[i] as usize] = false;
        i += 1;
    }
    table
};

/// The headers without those whose name matches `drop` (a redirect's rules).
fn without(headers: &[(String, String)], drop: impl Fn(&str) -> bool) -> Arc<[(String, String)]> {
    headers.iter().filter(|(k, _)| !drop(k)).cloned().collect()
}

/// Refuses what would break the request framing: a bad name, or CR/LF/NUL in a value. Runs for
/// every header of every request, hence the table instead of a scan of the separators per byte.
fn check_header(name: &str, value: &str) -> Result<(), ClientError> {
    let name_ok = !name.is_empty() && name.bytes().all(|b| TOKEN[b as usize]);
    if !name_ok {
        return Err(ClientError::new(
            ErrorKind::InvalidHeader,
            format!("Invalid header name {name:?}"),
        ));
    }
    if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
        return Err(ClientError::new(
            ErrorKind::InvalidHeader,
            format!("Invalid value for header {name:?}: {value:?}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use bytes::Bytes;

    use super::{decode_content, ErrorKind, Target};

    /// "horde decodes brotli" twenty times, as Python's brotli compresses it.
    const BROTLI: &[u8] = &[
        0x1b, 0x8f, 0x01, 0xf8, 0xc5, 0x6d, 0x6c, 0x5d, 0xf7, 0x2e, 0x85, 0x82, 0x40, 0xa8, 0x82,
        0xc2, 0x18, 0x41, 0x36, 0xe5, 0xa5, 0x40, 0xa5, 0xa9, 0x43, 0xac, 0x7f, 0x1a,
    ];

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn content_codings_are_undone_last_first() {
        let plain = "horde decodes brotli".repeat(20);
        let br = decode_content("br", Bytes::from_static(BROTLI)).unwrap();
        assert_eq!(br, plain.as_bytes());
        // Brotli applied first, then gzip: gzip is undone first.
        let stacked = Bytes::from(gzip(BROTLI));
        assert_eq!(
            decode_content("BR, gzip", stacked).unwrap(),
            plain.as_bytes()
        );
        let identity = Bytes::from_static(b"as is");
        assert_eq!(
            decode_content("identity", identity.clone()).unwrap(),
            identity
        );
        // A coding the client does not know: the body stays as it came, all of it.
        let zstd = Bytes::from(gzip(b"x"));
        assert_eq!(decode_content("gzip, zstd", zstd.clone()).unwrap(), zstd);
        let broken = decode_content("br", Bytes::from_static(b"not brotli at all")).unwrap_err();
        assert_eq!(broken.kind, ErrorKind::Decode);
        assert!(broken
            .message
            .starts_with("Received response with content-encoding: br, but failed to decode it"));
    }

    #[test]
    fn target_splits_host_port_and_path() {
        // url, https, host, port, Host header, request target
        #[rustfmt::skip]
        let cases = [
            ("http://127.0.0.1:8080/a?b=1#frag", false, "127.0.0.1", 8080, "127.0.0.1:8080", "/a?b=1"),
            ("https://example.com", true, "example.com", 443, "example.com", "/"),
            ("http://example.com:80?q", false, "example.com", 80, "example.com", "/?q"),
            ("http://user:pa:ss@host:81/x", false, "host", 81, "host:81", "/x"),
            ("http://[::1]:9000/", false, "[::1]", 9000, "[::1]:9000", "/"),
            ("http://[::1]/", false, "[::1]", 80, "[::1]", "/"),
            ("HTTP://h/p@q:r", false, "h", 80, "h", "/p@q:r"),
        ];
        for (url, https, host, port, host_header, path) in cases {
            let t = Target::parse(url).unwrap();
            let o = t.origin;
            assert_eq!(
                (o.https, o.host, o.port, t.host_header, &*t.path_and_query),
                (https, host, port, host_header, path),
                "{url}"
            );
        }
        for bad in [
            "http://h:99999/",
            "http://:80/",
            "http://h:x/",
            "ftp://h/",
            "h/",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }
}

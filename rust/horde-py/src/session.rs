//! A user's session, its headers and its responses, as Python sees them. `submit` copies a
//! request into Rust values and stages it on the thread's bridge (bridge.rs); the result comes
//! back as a `Response` that carries the engine's verdict on it (`failure`), decided once by
//! `horde_core::locust`.

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use pyo3::exceptions::{PyKeyError, PyValueError};
use pyo3::prelude::*;
use pyo3::pybacked::{PyBackedBytes, PyBackedStr};
use pyo3::types::{PyBytes, PyString};

use horde_core::client::{ClientError, CookieInfo, HeaderPairs, Hop, Sent};
use horde_core::{Failure, Request, Timeouts, TlsMode, UserKind};

use crate::bridge::{Completions, Job};
use crate::stats::RequestStats;

/// `kind` as Python names it: the user class whose rules a session follows.
fn user_kind(kind: &str) -> PyResult<UserKind> {
    match kind {
        "HttpUser" => Ok(UserKind::HttpUser),
        "FastHttpUser" => Ok(UserKind::FastHttpUser),
        other => Err(PyValueError::new_err(format!(
            "kind must be 'HttpUser' or 'FastHttpUser', not {other:?}"
        ))),
    }
}

fn secs(v: Option<f64>) -> PyResult<Option<Duration>> {
    match v {
        None => Ok(None),
        Some(s) if s.is_finite() && s >= 0.0 => Ok(Some(Duration::from_secs_f64(s))),
        Some(s) => Err(PyValueError::new_err(format!(
            "timeout must be a non-negative number of seconds, got {s}"
        ))),
    }
}

/// The engine's side of an `HttpSession`: connections, cookies, and the user kind whose rules
/// decide what its results count as.
#[pyclass(frozen, module = "horde._core")]
pub struct Session {
    pub(crate) inner: horde_core::Session,
    pub(crate) kind: UserKind,
}

#[pymethods]
impl Session {
    #[new]
    #[pyo3(signature = (kind="HttpUser", verify=true, ca_pem=None, max_redirects=30))]
    fn new(
        kind: &str,
        verify: bool,
        ca_pem: Option<Vec<u8>>,
        max_redirects: u32,
    ) -> PyResult<Self> {
        let config = horde_core::SessionConfig {
            tls: if verify {
                TlsMode::Verify {
                    extra_roots_pem: ca_pem,
                }
            } else {
                TlsMode::Insecure
            },
            max_redirects,
            ..Default::default()
        };
        let inner =
            horde_core::Session::new(config).map_err(|e| PyValueError::new_err(e.message))?;
        Ok(Session {
            inner,
            kind: user_kind(kind)?,
        })
    }

    /// Stages a request on `completions`; `completions.flush()` starts every staged request and
    /// `(token, response)` later comes out of `completions.drain()`. Returns True when this is
    /// the first request staged since the last flush (the caller then arranges one flush).
    ///
    /// `headers` is the session's `Headers` or a list of `(name, value)` pairs; `name` is the
    /// request's stats name, which the engine's failure texts use. `stats` are the run's: horde's
    /// own delay is counted there, and with `log` the outcome too. `late_by` (open model, the
    /// iteration's first request): seconds since the iteration's scheduled start, from which its
    /// response time then counts. `proxies`: the proxies it may go through; `max_redirects`
    /// overrides the session's limit.
    // The arguments of one Python call, converted in place: a parameter object here would cost a
    // Python object per request.
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (completions, token, method, url, name, headers, cookies=None, body=None,
                        allow_redirects=true, timeouts=None, stats=None, log=false, late_by=None,
                        proxies=None, max_redirects=None))]
    fn submit(
        &self,
        completions: &Completions,
        token: Py<PyAny>,
        method: &str,
        url: String,
        name: PyBackedStr,
        headers: &Bound<'_, PyAny>,
        cookies: Option<Vec<(String, String)>>,
        body: Option<PyBackedBytes>,
        allow_redirects: bool,
        timeouts: Option<(Option<f64>, Option<f64>, Option<f64>)>,
        stats: Option<PyRef<'_, RequestStats>>,
        log: bool,
        late_by: Option<f64>,
        proxies: Option<PyRef<'_, Proxies>>,
        max_redirects: Option<u32>,
    ) -> PyResult<bool> {
        let submitted = Instant::now();
        // Upper-cased only when needed: the client passes "GET", "POST"… already.
        let parsed = if method.bytes().any(|b| b.is_ascii_lowercase()) {
            http::Method::from_bytes(method.to_ascii_uppercase().as_bytes())
        } else {
            http::Method::from_bytes(method.as_bytes())
        };
        let method =
            parsed.map_err(|_| PyValueError::new_err(format!("invalid HTTP method {method:?}")))?;
        let timeouts = match timeouts {
            Some((c, r, t)) => Some(Timeouts {
                connect: secs(c)?,
                read: secs(r)?,
                total: secs(t)?,
            }),
            None => None,
        };
        let headers = match headers.cast::<Headers>() {
            Ok(session_headers) => session_headers.borrow_mut().wire(headers.py())?,
            Err(_) => headers.extract::<Vec<(String, String)>>()?.into(),
        };
        let request = Request {
            method,
            url,
            headers,
            cookies: cookies.unwrap_or_default(),
            body: body.map(Bytes::from_owner),
            allow_redirects,
            timeouts,
            proxies: proxies.map(|p| p.inner.clone()),
            max_redirects,
        };
        Ok(completions.stage(Job {
            session: self.inner.clone(),
            kind: self.kind,
            request,
            name,
            stats: stats.map(|s| s.shared()),
            log,
            late_by: late_by.map(|s| Duration::from_secs_f64(s.max(0.0))),
            submitted,
            token,
        }))
    }

    /// The jar's cookies as `(name, value, domain, path, domain_specified, secure, http_only,
    /// expires)` tuples (`expires`: seconds since the epoch, None for a session cookie).
    fn cookies(&self) -> Vec<CookieTuple> {
        self.inner
            .cookies()
            .into_iter()
            .map(
                |CookieInfo {
                     name,
                     value,
                     domain,
                     domain_specified,
                     path,
                     secure,
                     http_only,
                     expires,
                 }| {
                    (
                        name,
                        value,
                        domain,
                        path,
                        domain_specified,
                        secure,
                        http_only,
                        expires,
                    )
                },
            )
            .collect()
    }

    /// Stores a cookie given as a Set-Cookie header value, as if `url` had sent it.
    fn set_cookie(&self, url: &str, set_cookie: &str) -> PyResult<()> {
        self.inner
            .set_cookie(url, set_cookie)
            .map_err(|e| PyValueError::new_err(e.message))
    }

    /// Removes the cookies that match every filter given; all of them when none is.
    #[pyo3(signature = (name=None, domain=None, path=None))]
    fn clear_cookies(&self, name: Option<&str>, domain: Option<&str>, path: Option<&str>) {
        self.inner.clear_cookies(name, domain, path);
    }

    /// Drops idle connections.
    fn close(&self) {
        self.inner.close();
    }
}

/// `(name, value, domain, path, domain_specified, secure, http_only, expires)` of a cookie.
type CookieTuple = (
    String,
    String,
    String,
    String,
    bool,
    bool,
    bool,
    Option<i64>,
);

/// The proxies a request may go through (requests' rules; see `horde_core::client::Proxies`),
/// built once for a session's settings and shared by its requests.
#[pyclass(frozen, module = "horde._core")]
pub struct Proxies {
    inner: Arc<horde_core::client::Proxies>,
}

#[pymethods]
impl Proxies {
    /// requests' proxies mappings as pairs (keys `scheme://host`, `scheme`, `all://host`,
    /// `all`): the request's (a None value takes the key away), the environment's `*_proxy`
    /// variables by scheme (for hosts `no_proxy` does not exempt), the session's; in that order
    /// of precedence, as requests merges them.
    #[new]
    #[pyo3(signature = (request, environment=Vec::new(), session=Vec::new(), no_proxy=None))]
    fn new(
        request: Vec<(String, Option<String>)>,
        environment: Vec<(String, String)>,
        session: Vec<(String, String)>,
        no_proxy: Option<String>,
    ) -> Self {
        Proxies {
            inner: Arc::new(horde_core::client::Proxies::new(
                request,
                environment,
                session,
                no_proxy,
            )),
        }
    }

    /// Why the first proxy URL of the request's or the session's mapping cannot be used, or None.
    #[getter]
    fn invalid(&self) -> Option<String> {
        self.inner.first_invalid().map(|e| e.message.clone())
    }
}

/// The headers a session sends with every request: a case-insensitive mapping that keeps each
/// name's case as last set, in the order names were first set. Python subclasses it as a
/// `MutableMapping` (`horde.clients.SessionHeaders`). The engine reads it directly at `submit`,
/// converting the values to text once after each change, so a request costs no conversion.
#[pyclass(subclass, module = "horde._core")]
pub struct Headers {
    items: Vec<(Cow<'static, str>, Py<PyAny>)>,
    /// The pairs as sent (None-valued headers left out), until the next change.
    wire: Option<HeaderPairs>,
}

/// The default headers of each user kind as sent, shared by every session until it changes its
/// own (most never do).
fn default_wire(kind: UserKind) -> HeaderPairs {
    static HTTP: OnceLock<HeaderPairs> = OnceLock::new();
    static FAST: OnceLock<HeaderPairs> = OnceLock::new();
    let cell = match kind {
        UserKind::HttpUser => &HTTP,
        UserKind::FastHttpUser => &FAST,
    };
    cell.get_or_init(|| {
        kind.default_headers()
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    })
    .clone()
}

impl Headers {
    fn position(&self, name: &str) -> Option<usize> {
        self.items
            .iter()
            .position(|(k, _)| k.eq_ignore_ascii_case(name))
    }

    /// The pairs to send, converted now if they changed since the last request.
    fn wire(&mut self, py: Python<'_>) -> PyResult<HeaderPairs> {
        if let Some(wire) = &self.wire {
            return Ok(wire.clone());
        }
        let mut pairs = Vec::with_capacity(self.items.len());
        for (name, value) in &self.items {
            let value = value.bind(py);
            if value.is_none() {
                continue; // requests leaves out a header whose value is None
            }
            pairs.push((name.to_string(), header_value(value)?));
        }
        let wire: HeaderPairs = pairs.into();
        self.wire = Some(wire.clone());
        Ok(wire)
    }
}

/// A header value as text: str as it is, bytes as latin-1 (as http.client sends them), anything
/// else by `str()`.
fn header_value(value: &Bound<'_, PyAny>) -> PyResult<String> {
    if let Ok(s) = value.cast::<PyString>() {
        return Ok(s.to_str()?.to_owned());
    }
    if let Ok(b) = value.cast::<PyBytes>() {
        return Ok(b.as_bytes().iter().map(|&c| c as char).collect());
    }
    Ok(value.str()?.to_str()?.to_owned())
}

#[pymethods]
impl Headers {
    /// Empty, or a user kind's default headers with `defaults="HttpUser"` / `"FastHttpUser"`.
    #[new]
    #[pyo3(signature = (*_args, defaults=None, **_kwargs))]
    fn new(
        py: Python<'_>,
        _args: &Bound<'_, pyo3::types::PyTuple>,
        defaults: Option<&str>,
        _kwargs: Option<&Bound<'_, pyo3::types::PyDict>>,
    ) -> PyResult<Self> {
        let Some(kind) = defaults else {
            return Ok(Headers {
                items: Vec::new(),
                wire: Some(Arc::new([])),
            });
        };
        let kind = user_kind(kind)?;
        let items = kind
            .default_headers()
            .iter()
            .map(|(k, v)| (Cow::Borrowed(*k), PyString::new(py, v).into_any().unbind()))
            .collect();
        Ok(Headers {
            items,
            wire: Some(default_wire(kind)),
        })
    }

    fn __getitem__(&self, py: Python<'_>, name: &str) -> PyResult<Py<PyAny>> {
        match self.position(name) {
            Some(i) => Ok(self.items[i].1.clone_ref(py)),
            None => Err(PyKeyError::new_err(name.to_owned())),
        }
    }

    fn __setitem__(&mut self, name: String, value: Py<PyAny>) {
        self.wire = None;
        match self.position(&name) {
            Some(i) => self.items[i] = (Cow::Owned(name), value),
            None => self.items.push((Cow::Owned(name), value)),
        }
    }

    fn __delitem__(&mut self, name: &str) -> PyResult<()> {
        let i = self
            .position(name)
            .ok_or_else(|| PyKeyError::new_err(name.to_owned()))?;
        self.wire = None;
        self.items.remove(i);
        Ok(())
    }

    fn __contains__(&self, name: &Bound<'_, PyAny>) -> bool {
        name.extract::<&str>()
            .is_ok_and(|name| self.position(name).is_some())
    }

    fn __len__(&self) -> usize {
        self.items.len()
    }

    /// The names, in order.
    fn names(&self) -> Vec<String> {
        self.items.iter().map(|(k, _)| k.to_string()).collect()
    }

    /// `(name, value)` pairs, in order.
    fn pairs(&self, py: Python<'_>) -> Vec<(String, Py<PyAny>)> {
        self.items
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone_ref(py)))
            .collect()
    }

    /// Removes every header.
    fn clear(&mut self) {
        self.items.clear();
        self.wire = None;
    }
}

/// `(status, reason, url, headers, (method, request headers, request body))` of a response that
/// was redirected away from.
type HopTuple = (u16, String, String, Vec<(String, String)>, SentTuple);
/// `(method, headers, body)` of a request as sent.
type SentTuple = (String, Vec<(String, String)>, Py<PyBytes>);
/// `(exception class name, message, text)`: see `horde_core::Failure`.
type FailureTuple = (&'static str, String, String);

fn sent_to_py(py: Python<'_>, sent: &Sent) -> SentTuple {
    (
        sent.method.as_str().to_owned(),
        sent.headers.to_vec(),
        PyBytes::new(py, &sent.body).unbind(),
    )
}

fn failure_to_py(failure: &Failure) -> FailureTuple {
    (
        failure.exception,
        failure.message.clone(),
        failure.text.clone(),
    )
}

/// Lower-case names, each name's values together in the order its first field came (as the
/// `http::HeaderMap` the engine used to build gave them).
fn headers_to_py(headers: &horde_core::client::Headers) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::with_capacity(headers.len());
    for (name, _) in headers.iter() {
        let name = name.to_ascii_lowercase();
        if out.iter().any(|(n, _)| *n == name) {
            continue;
        }
        for value in headers.get_all(&name) {
            // Header bytes are latin-1 on the wire, as http.client decodes them.
            out.push((name.clone(), value.iter().map(|&b| b as char).collect()));
        }
    }
    out
}

/// When a request waited and how long it took, as the engine saw it.
pub(crate) struct Timing {
    /// From the user's call reaching the engine until the engine started the request.
    pub queued: Duration,
    /// When the last byte was read (or the request failed).
    pub completed: Instant,
    /// The request's own time: from the engine starting it to the last byte (ms).
    pub service_ms: f64,
    /// Open model, an iteration's first request: from the iteration's scheduled start (ms).
    pub corrected_ms: Option<f64>,
}

/// Where horde's own delay for the request goes once the user runs again (see `resumed`).
pub(crate) struct OwnDelay {
    pub stats: Option<Arc<horde_core::RequestStats>>,
    /// The engine logged the outcome (so it counts the delay too, into `sample`).
    pub logged: bool,
    pub sample: Option<u64>,
}

/// What a request's task hands to Python.
pub(crate) struct Completed {
    pub result: Result<horde_core::Response, ClientError>,
    /// What the request counts as, by its session's rules (None: it succeeded).
    pub failure: Option<Failure>,
    /// What was sent, for a request that got no response (a response carries its own).
    pub sent: Sent,
    /// Kept until Python has the result, so it is released with the GIL held.
    pub _name: PyBackedStr,
    pub timing: Timing,
    pub own_delay: OwnDelay,
}

/// A finished request: the response, or for a request that got none (refused, reset, timed
/// out...) `status_code` 0 and the error. The body stays in Rust until Python asks for it.
#[pyclass(frozen, module = "horde._core")]
pub struct Response {
    done: Completed,
    /// horde's own delay (µs), once `resumed` has measured it; u64::MAX before.
    own_delay_us: AtomicU64,
}

impl Response {
    pub(crate) fn new(done: Completed) -> Self {
        Response {
            done,
            own_delay_us: AtomicU64::new(u64::MAX),
        }
    }

    fn response(&self) -> Option<&horde_core::Response> {
        self.done.result.as_ref().ok()
    }
}

#[pymethods]
impl Response {
    /// 0 when there was no response.
    #[getter]
    fn status_code(&self) -> u16 {
        self.response().map_or(0, |r| r.status)
    }

    /// Called once the waiting user has its result: measures horde's own delay for the request
    /// (from the user's call until the engine started it, plus from the last byte until now) and
    /// counts it where the engine logged the request. Returns `status_code`.
    fn resumed(&self) -> u16 {
        let timing = &self.done.timing;
        let own = timing.queued + timing.completed.elapsed();
        let us = own.as_micros().min(u64::MAX as u128 - 1) as u64;
        if self.own_delay_us.swap(us, Ordering::Relaxed) == u64::MAX {
            let target = &self.done.own_delay;
            if let (Some(stats), true) = (&target.stats, target.logged) {
                stats.record_own_delay(us, target.sample);
            }
        }
        self.status_code()
    }

    /// The response time (ms) as reported: from the iteration's scheduled start for an open-model
    /// iteration's first request, else the service time.
    #[getter]
    fn response_time(&self) -> f64 {
        let timing = &self.done.timing;
        timing.corrected_ms.unwrap_or(timing.service_ms)
    }

    /// When the request started, in seconds since the epoch: its end less its response time.
    #[getter]
    fn start_time(&self) -> f64 {
        let ended = horde_core::stats::now_epoch_secs()
            - self.done.timing.completed.elapsed().as_secs_f64();
        ended - self.response_time() / 1000.0
    }

    /// The uncorrected service time (ms) when `response_time` counts from a scheduled start,
    /// else None.
    #[getter]
    fn service_time(&self) -> Option<f64> {
        let timing = &self.done.timing;
        timing.corrected_ms.map(|_| timing.service_ms)
    }

    /// horde's own delay (µs) for the request, once `resumed` was called; None before.
    #[getter]
    fn own_delay(&self) -> Option<u64> {
        let us = self.own_delay_us.load(Ordering::Relaxed);
        (us != u64::MAX).then_some(us)
    }

    #[getter]
    fn reason(&self) -> &str {
        self.response().map_or("", |r| r.reason.as_str())
    }

    /// The final URL, after redirects ("" without a response).
    #[getter]
    fn url(&self) -> &str {
        self.response().map_or("", |r| r.url.as_str())
    }

    /// Seconds from the start of the request to the end of the body, or to the failure.
    #[getter]
    fn elapsed(&self) -> f64 {
        match &self.done.result {
            Ok(r) => r.elapsed.as_secs_f64(),
            Err(e) => e.elapsed.as_secs_f64(),
        }
    }

    #[getter]
    fn headers(&self) -> Vec<(String, String)> {
        self.response()
            .map_or_else(Vec::new, |r| headers_to_py(&r.headers))
    }

    /// None without a response.
    #[getter]
    fn content<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        self.response().map(|r| PyBytes::new(py, &r.body))
    }

    #[getter]
    fn content_length(&self) -> usize {
        self.response().map_or(0, |r| r.body.len())
    }

    #[getter]
    fn version(&self) -> &'static str {
        match self.response().map(|r| r.version) {
            Some(http::Version::HTTP_10) => "HTTP/1.0",
            _ => "HTTP/1.1",
        }
    }

    /// Responses redirected away from, oldest first: `(status, reason, url, headers, sent)`,
    /// `sent` being the request that got it as `(method, headers, body)`.
    #[getter]
    fn history(&self, py: Python<'_>) -> Vec<HopTuple> {
        let Some(r) = self.response() else {
            return Vec::new();
        };
        r.history
            .iter()
            .map(
                |Hop {
                     status,
                     reason,
                     url,
                     headers,
                     sent,
                 }| {
                    (
                        *status,
                        reason.clone(),
                        url.clone(),
                        headers_to_py(headers),
                        sent_to_py(py, sent),
                    )
                },
            )
            .collect()
    }

    /// The request that got this response (after any redirects) as `(method, headers, body)`.
    #[getter]
    fn sent(&self, py: Python<'_>) -> SentTuple {
        match self.response() {
            Some(r) => sent_to_py(py, &r.sent),
            None => sent_to_py(py, &self.done.sent),
        }
    }

    /// What the request counts as: None if it succeeded, else `(exception class name, message,
    /// text)`. A transport error for any session; a status the session's user kind does not
    /// accept, worded with the request's stats name as Locust words it.
    #[getter]
    fn failure(&self) -> Option<FailureTuple> {
        self.done.failure.as_ref().map(failure_to_py)
    }
}

/// The failure `raise_for_status()` raises for a response with this status under `kind`'s rules
/// (requests' for "HttpUser", geventhttpclient's for "FastHttpUser"), with `url` in its message;
/// None if that kind of user accepts the status.
#[pyfunction]
pub fn status_failure(
    kind: &str,
    status: u16,
    reason: &str,
    url: &str,
) -> PyResult<Option<FailureTuple>> {
    Ok(user_kind(kind)?
        .status_failure(status, reason, url)
        .as_ref()
        .map(failure_to_py))
}

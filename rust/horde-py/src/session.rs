//! A user's session and its responses, as Python sees them. `submit` copies the request into
//! Rust values and hands it to the runtime; the result reaches Python through `Completions`.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::{PyBytes, PyTuple};

use horde_core::client::{CookieInfo, Hop};
use horde_core::runtime::CatchPanic;
use horde_core::{ClientError, ErrorKind, FailurePolicy, Request, Timeouts, TlsMode};

use crate::bridge::Completions;
use crate::stats::RequestStats;

#[pyclass(frozen, module = "horde._core")]
pub struct Session {
    inner: horde_core::Session,
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

/// The last tuple of header pairs converted, and its conversion. The client passes one tuple per
/// distinct set of session headers, shared by every session that has them, so nearly every
/// request finds its headers here instead of copying each name and value into Rust again. The
/// tuple is held, so its identity cannot be reused by another while it is here.
static LAST_HEADERS: Mutex<Option<(Py<PyAny>, HeaderPairs)>> = Mutex::new(None);

type HeaderPairs = Arc<[(String, String)]>;

/// `headers` (a list or tuple of `(name, value)` pairs) as the engine takes them.
fn shared_headers(headers: &Bound<'_, PyAny>) -> PyResult<HeaderPairs> {
    // Only a tuple can be remembered by identity: a list may change after it was converted.
    if !headers.is_exact_instance_of::<PyTuple>() {
        return Ok(headers.extract::<Vec<(String, String)>>()?.into());
    }
    let mut last = LAST_HEADERS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((tuple, converted)) = &*last {
        if tuple.is(headers) {
            return Ok(converted.clone());
        }
    }
    let converted: HeaderPairs = headers.extract::<Vec<(String, String)>>()?.into();
    *last = Some((headers.clone().unbind(), converted.clone()));
    Ok(converted)
}

#[pymethods]
impl Session {
    #[new]
    #[pyo3(signature = (verify=true, ca_pem=None, max_redirects=30, default_headers=None,
                        connect_timeout=None, read_timeout=None, total_timeout=None, decompress=true))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        verify: bool,
        ca_pem: Option<Vec<u8>>,
        max_redirects: u32,
        default_headers: Option<Vec<(String, String)>>,
        connect_timeout: Option<f64>,
        read_timeout: Option<f64>,
        total_timeout: Option<f64>,
        decompress: bool,
    ) -> PyResult<Self> {
        let mut config = horde_core::SessionConfig {
            tls: if verify {
                TlsMode::Verify {
                    extra_roots_pem: ca_pem,
                }
            } else {
                TlsMode::Insecure
            },
            max_redirects,
            timeouts: Timeouts {
                connect: secs(connect_timeout)?,
                read: secs(read_timeout)?,
                total: secs(total_timeout)?,
            },
            decompress,
            ..Default::default()
        };
        if let Some(h) = default_headers {
            config.default_headers = h;
        }
        let inner =
            horde_core::Session::new(config).map_err(|e| PyValueError::new_err(e.message))?;
        Ok(Session { inner })
    }

    /// Stages a request on `completions`; `completions.flush()` starts every staged request and
    /// `(token, result)` later comes out of `completions.drain()`. Returns True when this is the
    /// first request staged since the last flush (the caller then arranges one flush). When
    /// `record` is `(stats, name, fast)` the outcome is also logged into `stats` under `name`
    /// with FastHttpUser's (fast=True) or HttpUser's failure rules.
    #[pyo3(signature = (completions, token, method, url, headers=None, cookies=None, body=None,
                        allow_redirects=true, timeouts=None, record=None))]
    #[allow(clippy::too_many_arguments)]
    fn submit(
        &self,
        completions: &Completions,
        token: Py<PyAny>,
        method: &str,
        url: String,
        headers: Option<&Bound<'_, PyAny>>,
        cookies: Option<Vec<(String, String)>>,
        body: Option<PyBackedBytes>,
        allow_redirects: bool,
        timeouts: Option<(Option<f64>, Option<f64>, Option<f64>)>,
        record: Option<(PyRef<'_, RequestStats>, String, bool)>,
    ) -> PyResult<bool> {
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
        let request = Request {
            method,
            url,
            headers: match headers {
                Some(headers) => shared_headers(headers)?,
                None => Arc::new([]),
            },
            cookies: cookies.unwrap_or_default(),
            body: body.map(Bytes::from_owner),
            allow_redirects,
            timeouts,
        };
        let record = record.map(|(stats, name, fast)| {
            let policy = if fast {
                FailurePolicy::FastHttpUser
            } else {
                FailurePolicy::HttpUser
            };
            (stats.shared(), name, policy)
        });
        Ok(completions.queue.stage(Job {
            session: self.inner.clone(),
            request,
            record,
            token,
        }))
    }

    /// The jar's cookies as `(name, value, domain, path)` tuples.
    fn cookies(&self) -> Vec<(String, String, String, String)> {
        self.inner
            .cookies()
            .into_iter()
            .map(
                |CookieInfo {
                     name,
                     value,
                     domain,
                     path,
                 }| (name, value, domain, path),
            )
            .collect()
    }

    /// Stores a cookie given as a Set-Cookie header value, as if `url` had sent it.
    fn set_cookie(&self, url: &str, set_cookie: &str) -> PyResult<()> {
        self.inner
            .set_cookie(url, set_cookie)
            .map_err(|e| PyValueError::new_err(e.message))
    }

    #[pyo3(signature = (name=None))]
    fn clear_cookies(&self, name: Option<&str>) {
        self.inner.clear_cookies(name);
    }

    /// Drops idle connections.
    fn close(&self) {
        self.inner.close();
    }
}

/// `(status, reason, url, headers)` of a response that was redirected away from.
type HopTuple = (u16, String, String, Vec<(String, String)>);

/// A finished response. The body stays in Rust until Python asks for it.
#[pyclass(frozen, module = "horde._core")]
pub struct Response {
    inner: horde_core::Response,
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

#[pymethods]
impl Response {
    #[getter]
    fn status_code(&self) -> u16 {
        self.inner.status
    }

    #[getter]
    fn reason(&self) -> &str {
        &self.inner.reason
    }

    #[getter]
    fn url(&self) -> &str {
        &self.inner.url
    }

    /// Seconds from the start of the request to the end of the body.
    #[getter]
    fn elapsed(&self) -> f64 {
        self.inner.elapsed.as_secs_f64()
    }

    #[getter]
    fn headers(&self) -> Vec<(String, String)> {
        headers_to_py(&self.inner.headers)
    }

    #[getter]
    fn content<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.body)
    }

    #[getter]
    fn content_length(&self) -> usize {
        self.inner.body.len()
    }

    #[getter]
    fn version(&self) -> &'static str {
        match self.inner.version {
            http::Version::HTTP_10 => "HTTP/1.0",
            _ => "HTTP/1.1",
        }
    }

    /// Responses redirected away from, oldest first: `(status, reason, url, headers)`.
    #[getter]
    fn history(&self) -> Vec<HopTuple> {
        self.inner
            .history
            .iter()
            .map(
                |Hop {
                     status,
                     reason,
                     url,
                     headers,
                 }| {
                    (*status, reason.clone(), url.clone(), headers_to_py(headers))
                },
            )
            .collect()
    }
}

/// A `Response`, or for a failure the tuple `(kind, message, elapsed_seconds, locust_repr)`.
pub(crate) fn result_to_py(
    py: Python<'_>,
    result: Result<horde_core::Response, ClientError>,
) -> PyResult<Py<PyAny>> {
    match result {
        Ok(inner) => Ok(Py::new(py, Response { inner })?.into_any()),
        Err(e) => {
            let repr = e.locust_repr();
            let t = PyTuple::new(
                py,
                [
                    e.kind.name().into_pyobject(py)?.into_any(),
                    e.message.into_pyobject(py)?.into_any(),
                    e.elapsed.as_secs_f64().into_pyobject(py)?.into_any(),
                    repr.into_pyobject(py)?.into_any(),
                ],
            )?;
            Ok(t.into_any().unbind())
        }
    }
}

/// A request waiting in a thread's staging queue, with what its completion needs.
pub(crate) struct Job {
    session: horde_core::Session,
    request: Request,
    record: Option<(Arc<horde_core::RequestStats>, String, FailurePolicy)>,
    token: Py<PyAny>,
}

impl Job {
    /// The request's task. Boxed: tokio moves a task's future several times while spawning and
    /// finishing it, each a copy of its whole size, and a pointer is cheaper to move.
    pub(crate) fn run(
        self,
        queue: Arc<crate::bridge::Queue>,
    ) -> Pin<Box<impl Future<Output = ()> + Send + 'static>> {
        Box::pin(self.execute(queue))
    }

    /// Runs the request on the engine, logs its outcome, and queues the result for Python.
    async fn execute(self, queue: Arc<crate::bridge::Queue>) {
        let Job {
            session,
            request,
            record,
            token,
        } = self;
        let method = request.method.clone();
        let result = CatchPanic(Box::pin(session.execute(request)))
            .await
            .unwrap_or_else(|panic| {
                Err(ClientError {
                    kind: ErrorKind::Protocol,
                    message: format!("internal error in horde's engine: {panic}"),
                    elapsed: Duration::ZERO,
                })
            });
        if let Some((stats, name, policy)) = record {
            let outcome = policy.outcome(&result, &name);
            stats.log_request(
                method.as_str(),
                &name,
                Some(outcome.response_time_ms),
                outcome.content_length,
                outcome.error.as_deref(),
                outcome.status,
                horde_core::stats::now_epoch_secs(),
            );
        }
        queue.push((token, result));
    }
}

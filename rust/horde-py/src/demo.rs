//! The demo target server, startable from Python (tests, notebooks, the `horde-demo` command).

use std::sync::Mutex;
use std::time::Duration;

use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;

use horde_demo::{DemoConfig, DemoServer as Server, Stall};

#[pyclass(frozen, module = "horde._core")]
pub struct DemoServer {
    server: Mutex<Option<Server>>,
    url: String,
    port: u16,
    cert_pem: Option<String>,
}

#[pymethods]
impl DemoServer {
    /// Starts serving on its own thread and runtime; returns once the socket listens.
    /// `stall=(period_s, freeze_s)` freezes every response for freeze_s seconds once every
    /// period_s seconds (a stalling server, for coordinated-omission tests).
    #[new]
    #[pyo3(signature = (host="127.0.0.1".to_owned(), port=0, tls=false, threads=1, stall=None))]
    fn new(
        py: Python<'_>,
        host: String,
        port: u16,
        tls: bool,
        threads: usize,
        stall: Option<(f64, f64)>,
    ) -> PyResult<Self> {
        let stall = match stall {
            None => None,
            Some((period, freeze))
                if period.is_finite()
                    && freeze.is_finite()
                    && period > 0.0
                    && (0.0..period).contains(&freeze) =>
            {
                Some(Stall {
                    period: Duration::from_secs_f64(period),
                    freeze: Duration::from_secs_f64(freeze),
                })
            }
            Some(bad) => {
                return Err(PyValueError::new_err(format!(
                    "stall must be (period, freeze) seconds with 0 <= freeze < period, not {bad:?}"
                )))
            }
        };
        let config = DemoConfig {
            host: host.clone(),
            port,
            tls,
            threads: threads.max(1),
            stall,
        };
        let server = py.detach(|| Server::start(config)).map_err(|e| {
            PyOSError::new_err(format!(
                "cannot start the demo target on {host}:{port}: {e}"
            ))
        })?;
        Ok(DemoServer {
            url: server.url(),
            port: server.addr().port(),
            cert_pem: server.cert_pem().map(str::to_owned),
            server: Mutex::new(Some(server)),
        })
    }

    #[getter]
    fn url(&self) -> &str {
        &self.url
    }

    #[getter]
    fn port(&self) -> u16 {
        self.port
    }

    /// The self-signed certificate (PEM) when serving TLS.
    #[getter]
    fn cert_pem(&self) -> Option<&str> {
        self.cert_pem.as_deref()
    }

    /// Requests received so far (any route), to check a load test's counts at the target; 0
    /// once stopped.
    #[getter]
    fn requests_served(&self) -> u64 {
        horde_core::lock(&self.server)
            .as_ref()
            .map_or(0, |s| s.requests_served())
    }

    /// Stops serving; safe to call twice.
    fn stop(&self, py: Python<'_>) {
        let server = horde_core::lock(&self.server).take();
        if let Some(server) = server {
            py.detach(|| server.stop());
        }
    }
}

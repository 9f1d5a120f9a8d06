//! The demo target server, startable from Python (tests, notebooks, the `horde-demo` command).

use std::sync::Mutex;

use pyo3::exceptions::PyOSError;
use pyo3::prelude::*;

use horde_demo::{DemoConfig, DemoServer as Server};

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
    #[new]
    #[pyo3(signature = (host="127.0.0.1".to_owned(), port=0, tls=false, threads=1))]
    fn new(py: Python<'_>, host: String, port: u16, tls: bool, threads: usize) -> PyResult<Self> {
        let config = DemoConfig {
            host: host.clone(),
            port,
            tls,
            threads: threads.max(1),
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

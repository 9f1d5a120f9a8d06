//! `_core.Router`: the master's ZeroMQ socket (horde_core::router), served by a thread of its own
//! with a single-threaded runtime, so the master's heartbeats and reports need neither the GIL nor
//! the engine's runtime.

use std::net::{TcpListener, ToSocketAddrs};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use pyo3::exceptions::PyOSError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use horde_core::router::{self, Inbound};

use crate::stats::RequestStats;

/// The accept queue's length (the kernel caps it at net.core.somaxconn).
const LISTEN_BACKLOG: i32 = 4096;

#[pyclass(frozen, module = "horde._core")]
pub struct Router {
    inner: Arc<router::Router>,
    #[pyo3(get)]
    port: u16,
    /// Signalled when the socket's thread has finished.
    done: Mutex<Option<mpsc::Receiver<()>>>,
}

/// Binds `host:port` as Locust's master does: "*" is every interface (IPv6 and IPv4 when the host
/// has IPv6), a name is resolved, port 0 is any free port.
fn bind(host: &str, port: u16) -> std::io::Result<TcpListener> {
    let candidates: Vec<std::net::SocketAddr> = if host == "*" {
        let any6 = (std::net::Ipv6Addr::UNSPECIFIED, port).into();
        let any4 = (std::net::Ipv4Addr::UNSPECIFIED, port).into();
        vec![any6, any4]
    } else {
        (host.trim_start_matches('[').trim_end_matches(']'), port)
            .to_socket_addrs()?
            .collect()
    };
    let mut last = std::io::Error::new(std::io::ErrorKind::NotFound, "no address to bind");
    for addr in candidates {
        match TcpListener::bind(addr) {
            Ok(listener) => {
                // std listens with a backlog of 128; a thousand workers connecting at once
                // overflow it, and each dropped connection waits a second for its retry.
                use std::os::fd::AsRawFd;
                // SAFETY: listen() on a socket this function owns; it only changes the backlog.
                unsafe { libc::listen(listener.as_raw_fd(), LISTEN_BACKLOG) };
                return Ok(listener);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => return Err(e),
            Err(e) => last = e,
        }
    }
    Err(last)
}

#[pymethods]
impl Router {
    /// Binds `host:port` and starts serving it. Raises OSError when it cannot bind.
    #[new]
    fn new(host: &str, port: u16, cpu_threshold: f64) -> PyResult<Self> {
        let listener = bind(host, port).map_err(|e| PyOSError::new_err(e.to_string()))?;
        let port = listener
            .local_addr()
            .map_err(|e| PyOSError::new_err(e.to_string()))?
            .port();
        listener
            .set_nonblocking(true)
            .map_err(|e| PyOSError::new_err(e.to_string()))?;
        let (inner, serving) =
            router::Router::new(cpu_threshold).map_err(|e| PyOSError::new_err(e.to_string()))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| PyOSError::new_err(e.to_string()))?;
        let (done_tx, done_rx) = mpsc::channel();
        let served = inner.clone();
        std::thread::Builder::new()
            .name("horde-master".into())
            .spawn(move || {
                let result = runtime.block_on(router::serve(served.clone(), serving, listener));
                if let Err(e) = result {
                    served.report_failure(&format!("the master's socket failed: {e}"));
                }
                let _ = done_tx.send(());
            })
            .map_err(|e| PyOSError::new_err(e.to_string()))?;
        Ok(Router {
            inner,
            port,
            done: Mutex::new(Some(done_rx)),
        })
    }

    /// The descriptor that becomes readable when `take` has something.
    fn fileno(&self) -> i32 {
        self.inner.wake_fd()
    }

    /// What arrived since the last call, as tuples: ("message", addr, payload, answered),
    /// ("report", node_id, counts or None, payload or None) or ("error", addr or None, text, None).
    fn take<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyAny>>> {
        let items = py.detach(|| self.inner.take());
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            let tuple = match item {
                Inbound::Message {
                    addr,
                    payload,
                    answered,
                } => ("message", addr, PyBytes::new(py, &payload), answered)
                    .into_pyobject(py)?
                    .into_any(),
                Inbound::Report {
                    node_id,
                    counts,
                    payload,
                } => {
                    let counts = match counts {
                        Some(counts) => {
                            let d = PyDict::new(py);
                            for (k, v) in counts {
                                d.set_item(k, v)?;
                            }
                            Some(d)
                        }
                        None => None,
                    };
                    let payload = payload.map(|p| PyBytes::new(py, &p));
                    ("report", node_id, counts, payload)
                        .into_pyobject(py)?
                        .into_any()
                }
                Inbound::Error { addr, text } => ("error", addr, text, py.None())
                    .into_pyobject(py)?
                    .into_any(),
            };
            out.push(tuple);
        }
        Ok(out)
    }

    /// Queues an encoded message for the worker `node_id`; returns at once.
    fn send(&self, node_id: &str, payload: &[u8]) {
        self.inner.send(
            Bytes::copy_from_slice(node_id.as_bytes()),
            Bytes::copy_from_slice(payload),
        );
    }

    /// Sends what is queued (waiting up to `linger` seconds for it to leave) and stops serving.
    fn close(&self, py: Python<'_>, linger: f64) {
        let linger = Duration::from_secs_f64(linger.clamp(0.0, 60.0));
        self.inner.close(linger);
        let done = self.done.lock().ok().and_then(|mut d| d.take());
        if let Some(done) = done {
            py.detach(move || {
                let _ = done.recv_timeout(linger + Duration::from_secs(2));
            });
        }
    }

    /// Merges stats reports into `stats` from now on.
    fn merge_into(&self, stats: &RequestStats) {
        self.inner.merge_into(stats.shared());
    }

    /// Whether every heartbeat and every whole report also go to Python (their events have
    /// listeners).
    fn set_forwarding(&self, heartbeats: bool, reports: bool) {
        self.inner.set_forwarding(heartbeats, reports);
    }

    fn add_worker(&self, node_id: &str, state: &str) {
        self.inner.add_worker(node_id, state);
    }

    fn set_live(&self, node_id: &str, live: bool, state: &str) {
        self.inner.set_live(node_id, live, state);
    }

    fn remove_worker(&self, node_id: &str) {
        self.inner.remove_worker(node_id);
    }

    /// [(node_id, seconds since its last heartbeat, cpu %, memory bytes or None)] for the live
    /// workers heard from since the last call.
    fn liveness(&self) -> Vec<(String, f64, f64, Option<i64>)> {
        self.inner
            .liveness()
            .into_iter()
            .map(|l| (l.node_id, l.silent, l.cpu, l.memory))
            .collect()
    }
}

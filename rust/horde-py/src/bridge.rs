//! Requests and completions cross between Python and the tokio threads in batches. Requests are
//! staged on the Python thread and handed to the runtime with one `flush` (one cross-thread wake-up
//! for all the users that sent a request in the same pass of the gevent loop). Finished requests
//! are pushed onto a queue and one eventfd is signalled per batch; the gevent hub watches that fd,
//! and its callback drains the whole queue with one call, then wakes each waiting greenlet.
//!
//! When the engine has no worker threads (one core), each `Completions` owns a `LocalRuntime`
//! instead: `flush` starts the staged requests on it, the hub watches its reactor, and `drain` first
//! turns it, all on the Python thread, so no hand-off crosses threads.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use pyo3::exceptions::PyOSError;
use pyo3::prelude::*;

use horde_core::runtime::{self, LocalRuntime};
use horde_core::{ClientError, Response};

use crate::session::Job;

pub(crate) type Finished = (Py<PyAny>, Result<Response, ClientError>);

pub(crate) struct Queue {
    staged: Mutex<Vec<Job>>,
    done: Mutex<Vec<Finished>>,
    signalled: AtomicBool,
    /// None on a local runtime: pushes come from the Python thread itself, nobody to wake.
    fd: Option<OwnedFd>,
}

impl Queue {
    /// Adds a request to the next flush; true if it is the first since the last flush.
    pub(crate) fn stage(&self, job: Job) -> bool {
        let mut staged = self.staged.lock().unwrap_or_else(|e| e.into_inner());
        staged.push(job);
        staged.len() == 1
    }

    /// Called on a tokio thread when a request ends. Only the first push after a drain writes the
    /// eventfd, so a burst of completions costs one wake-up.
    pub(crate) fn push(&self, item: Finished) {
        self.done
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(item);
        let Some(fd) = &self.fd else { return };
        if !self.signalled.swap(true, Ordering::AcqRel) {
            let one: u64 = 1;
            // SAFETY: writes 8 bytes from a live u64 to an eventfd we own.
            unsafe {
                libc::write(
                    fd.as_raw_fd(),
                    (&one as *const u64).cast(),
                    std::mem::size_of::<u64>(),
                );
            }
        }
    }
}

/// One thread's completion queue and its eventfd.
#[pyclass(frozen, module = "horde._core")]
pub struct Completions {
    pub(crate) queue: Arc<Queue>,
    local: Option<LocalRuntime>,
}

#[pymethods]
impl Completions {
    /// `local=None` follows `runtime_threads()`: a local runtime when it is 0, or the worker
    /// threads if one cannot be started here (no /proc, say).
    #[new]
    #[pyo3(signature = (local=None))]
    fn new(local: Option<bool>) -> PyResult<Self> {
        let local = match local {
            Some(false) => None,
            Some(true) => Some(LocalRuntime::new().map_err(|e| {
                PyOSError::new_err(format!("cannot start the engine's runtime: {e}"))
            })?),
            None if runtime::default_threads() == 0 => LocalRuntime::new().ok(),
            None => None,
        };
        let fd = if local.is_some() {
            None
        } else {
            // SAFETY: plain syscall; the result is checked before use.
            let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
            if fd < 0 {
                return Err(PyOSError::new_err(format!(
                    "eventfd failed: {}",
                    std::io::Error::last_os_error()
                )));
            }
            // SAFETY: fd is a fresh descriptor owned by nobody else.
            Some(unsafe { OwnedFd::from_raw_fd(fd) })
        };
        Ok(Completions {
            queue: Arc::new(Queue {
                staged: Mutex::new(Vec::new()),
                done: Mutex::new(Vec::new()),
                signalled: AtomicBool::new(false),
                fd,
            }),
            local,
        })
    }

    /// True when requests run on this thread's own runtime (see `drain`).
    #[getter]
    fn local(&self) -> bool {
        self.local.is_some()
    }

    /// Starts every staged request: one task handed to the runtime, which spawns the rest from
    /// inside (cheap there), instead of one cross-thread wake-up per request.
    /// On a local runtime, the requests also start here (and may finish: check `len()`).
    fn flush(&self, py: Python<'_>) -> usize {
        let jobs =
            std::mem::take(&mut *self.queue.staged.lock().unwrap_or_else(|e| e.into_inner()));
        let n = jobs.len();
        if let Some(local) = &self.local {
            let queue = &self.queue;
            py.detach(|| local.turn(jobs.into_iter().map(|job| job.run(queue.clone()))));
            return n;
        }
        match n {
            0 => {}
            1 => {
                let queue = self.queue.clone();
                let job = jobs.into_iter().next().expect("one job");
                runtime::handle().spawn(job.run(queue));
            }
            _ => {
                let queue = self.queue.clone();
                runtime::handle().spawn(async move {
                    for job in jobs {
                        tokio::spawn(job.run(queue.clone()));
                    }
                });
            }
        }
        n
    }

    /// The descriptor to watch for readability: the eventfd, or the local runtime's reactor.
    fn fileno(&self) -> i32 {
        match (&self.local, &self.queue.fd) {
            (Some(local), _) => local.fileno(),
            (None, Some(fd)) => fd.as_raw_fd(),
            (None, None) => unreachable!("a Completions without a local runtime has an eventfd"),
        }
    }

    /// Every finished request since the last call, as `(token, result)` pairs, where result is a
    /// `Response` or an error tuple `(kind, message, elapsed_seconds, locust_repr)`.
    /// A local runtime is turned first, which does the I/O that is ready.
    fn drain(&self, py: Python<'_>) -> PyResult<Vec<(Py<PyAny>, Py<PyAny>)>> {
        if let Some(local) = &self.local {
            py.detach(|| local.turn(std::iter::empty::<std::future::Ready<()>>()));
        } else if let Some(fd) = &self.queue.fd {
            let mut counter: u64 = 0;
            // SAFETY: reads 8 bytes into a live u64 from our nonblocking eventfd (EAGAIN is fine).
            unsafe {
                libc::read(
                    fd.as_raw_fd(),
                    (&mut counter as *mut u64).cast(),
                    std::mem::size_of::<u64>(),
                );
            }
            // Clear the flag before taking the batch: a push racing with us then signals again.
            self.queue.signalled.store(false, Ordering::Release);
        }
        let batch = std::mem::take(&mut *self.queue.done.lock().unwrap_or_else(|e| e.into_inner()));
        batch
            .into_iter()
            .map(|(token, result)| Ok((token, crate::session::result_to_py(py, result)?)))
            .collect()
    }

    /// Finished requests waiting to be drained.
    fn __len__(&self) -> usize {
        self.queue
            .done
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }
}

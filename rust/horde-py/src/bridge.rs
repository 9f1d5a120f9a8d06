//! Requests and completions cross between Python and the tokio threads in batches. Requests are
//! staged on the Python thread and handed to the runtime with one `flush` (one cross-thread wake-up
//! for all the users that sent a request in the same pass of the gevent loop). Finished requests
//! are pushed onto a queue and one eventfd is signalled per batch; the gevent hub watches that fd,
//! and its callback drains the whole queue with one call, then wakes each waiting greenlet.
//!
//! When the engine has no worker threads (one core), each `Completions` owns a `LocalRuntime`
//! instead: `flush` starts the staged requests on it, the hub watches its reactor, and `drain` first
//! turns it, all on the Python thread, so no hand-off crosses threads.
//!
//! A request's task (`Job`) runs it on the engine, has `horde_core::locust` decide what it counts
//! as, logs that into the stats when asked to, and queues the result for Python.

use std::fs::File;
use std::future::Future;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pyo3::exceptions::PyOSError;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;

use horde_core::client::Sent;
use horde_core::stats::now_epoch_secs;
use horde_core::{lock, ClientError, ErrorKind, Request, UserKind};

use crate::runtime::{self, CatchPanic, LocalRuntime};
use crate::session::{Completed, OwnDelay, Response, Timing};

/// A request waiting in a thread's staging queue, with what its completion needs.
pub(crate) struct Job {
    pub session: horde_core::Session,
    pub kind: UserKind,
    pub request: Request,
    /// The stats name, which failure texts quote.
    pub name: PyBackedStr,
    /// The run's statistics, if anything logs into them: horde's own delay goes there.
    pub stats: Option<Arc<horde_core::RequestStats>>,
    /// Log the outcome into `stats` here (the run's stats listener is the request event's only
    /// listener, so this is what it would do).
    pub log: bool,
    /// Open model, the iteration's first request: how late it was sent, after the iteration's
    /// scheduled start. Its response time then counts from that start.
    pub late_by: Option<Duration>,
    /// When the user's call reached the engine.
    pub submitted: Instant,
    /// Names the waiting greenlet (see `_Bridge.wait`).
    pub token: Py<PyAny>,
}

/// A finished request on its way to Python.
pub(crate) struct Finished {
    token: Py<PyAny>,
    response: Response,
}

impl Job {
    /// The request's task. Boxed: tokio moves a task's future several times while spawning and
    /// finishing it, each a copy of its whole size, and a pointer is cheaper to move (and is
    /// `Unpin`, which the local runtime's wrapper asks for).
    pub(crate) fn run(
        self,
        queue: Arc<Queue>,
    ) -> Pin<Box<impl Future<Output = ()> + Send + 'static>> {
        Box::pin(self.execute(queue))
    }

    async fn execute(self, queue: Arc<Queue>) {
        let Job {
            session,
            kind,
            request,
            name,
            stats,
            log,
            late_by,
            submitted,
            token,
        } = self;
        // Cheap copies (a shared header list, a shared body): a request that gets no response
        // still has to say what was sent.
        let sent = Sent {
            method: request.method.clone(),
            headers: request.headers.clone(),
            body: request.body.clone().unwrap_or_default(),
        };
        let started = Instant::now();
        let result = CatchPanic(Box::pin(session.execute(request)))
            .await
            .unwrap_or_else(|panic| {
                Err(ClientError::new(
                    ErrorKind::Internal,
                    format!("internal error in horde's engine: {panic}"),
                ))
            });
        let completed = Instant::now();
        let outcome = kind.outcome(&result, &name);
        let timing = Timing {
            queued: started.saturating_duration_since(submitted),
            completed,
            service_ms: outcome.response_time_ms,
            // From the scheduled start: how late it was sent, then all until the last byte.
            corrected_ms: late_by.map(|late| {
                (late + completed.saturating_duration_since(submitted)).as_secs_f64() * 1000.0
            }),
        };
        let mut sample = None;
        if let (Some(stats), true) = (&stats, log) {
            let mut record = outcome.record(sent.method.as_str(), &name);
            if let Some(corrected) = timing.corrected_ms {
                record.response_time_ms = Some(corrected);
                record.service_ms = Some(timing.service_ms);
            }
            sample = stats.record(&record, now_epoch_secs());
        }
        let response = Response::new(Completed {
            result,
            failure: outcome.failure,
            sent,
            _name: name,
            timing,
            own_delay: OwnDelay {
                stats,
                logged: log,
                sample,
            },
        });
        queue.push(Finished { token, response });
    }
}

pub(crate) struct Queue {
    staged: Mutex<Vec<Job>>,
    done: Mutex<Vec<Finished>>,
    signalled: AtomicBool,
    /// None on a local runtime: pushes come from the Python thread itself, nobody to wake.
    eventfd: Option<File>,
}

impl Queue {
    /// Called on a tokio thread when a request ends. Only the first push after a drain writes the
    /// eventfd, so a burst of completions costs one wake-up.
    fn push(&self, item: Finished) {
        lock(&self.done).push(item);
        let Some(eventfd) = &self.eventfd else { return };
        if !self.signalled.swap(true, Ordering::AcqRel) {
            // An eventfd adds the 8-byte counter written; it cannot be short of room for one.
            let _ = (&*eventfd).write(&1u64.to_ne_bytes());
        }
    }
}

/// One thread's completion queue and its eventfd.
#[pyclass(frozen, module = "horde._core")]
pub struct Completions {
    queue: Arc<Queue>,
    local: Option<LocalRuntime>,
}

impl Completions {
    /// Adds a request to the next flush; true if it is the first since the last flush.
    pub(crate) fn stage(&self, job: Job) -> bool {
        let mut staged = lock(&self.queue.staged);
        staged.push(job);
        staged.len() == 1
    }
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
        let eventfd = if local.is_some() {
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
            Some(File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
        };
        Ok(Completions {
            queue: Arc::new(Queue {
                staged: Mutex::new(Vec::new()),
                done: Mutex::new(Vec::new()),
                signalled: AtomicBool::new(false),
                eventfd,
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
        let jobs = std::mem::take(&mut *lock(&self.queue.staged));
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
        match (&self.local, &self.queue.eventfd) {
            (Some(local), _) => local.fileno(),
            (None, Some(eventfd)) => eventfd.as_raw_fd(),
            (None, None) => unreachable!("a Completions without a local runtime has an eventfd"),
        }
    }

    /// Every finished request since the last call, as `(token, Response)` pairs. A local
    /// runtime is turned first, which does the I/O that is ready.
    fn drain(&self, py: Python<'_>) -> PyResult<Vec<(Py<PyAny>, Py<Response>)>> {
        if let Some(local) = &self.local {
            py.detach(|| local.turn(std::iter::empty::<std::future::Ready<()>>()));
        } else if let Some(eventfd) = &self.queue.eventfd {
            // Resets the counter; a nonblocking read of an unsignalled eventfd fails with
            // EAGAIN, which is as good.
            let _ = (&*eventfd).read(&mut [0u8; 8]);
            // Clear the flag before taking the batch: a push racing with us then signals again.
            self.queue.signalled.store(false, Ordering::Release);
        }
        let batch = std::mem::take(&mut *lock(&self.queue.done));
        batch
            .into_iter()
            .map(|f| Ok((f.token, Py::new(py, f.response)?)))
            .collect()
    }

    /// Finished requests waiting to be drained.
    fn __len__(&self) -> usize {
        lock(&self.queue.done).len()
    }
}

//! The tokio runtimes that run every session's I/O from Python, and what embedding them in a
//! Python process takes: surviving `fork()`, and handing the reactor to gevent's loop.
//!
//! With more than one core, one multi-thread runtime per process (`handle()`): its workers do the
//! I/O beside the Python thread. It is built on first use, never at import, and rebuilt in a child
//! after `fork()`: a forked child inherits the runtime's memory but none of its threads, so the
//! inherited object must be leaked, not used or dropped.
//!
//! On one core (or with `HORDE_RUNTIME_THREADS=0`), a `LocalRuntime` per Python thread instead: a
//! current-thread runtime that the thread's own event loop drives whenever its reactor has events.
//! Two threads sharing one core pay a context switch and a wake-up syscall each way for every
//! hand-off, which cost more than the requests themselves; one thread doing both pays neither.
use std::future::Future;
use std::os::fd::{AsRawFd, RawFd};
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use tokio::runtime::{Builder, Runtime};

use horde_core::lock;

struct Owned {
    pid: u32,
    runtime: Arc<Runtime>,
}

static RUNTIME: Mutex<Option<Owned>> = Mutex::new(None);

/// Worker threads for the engine: `HORDE_RUNTIME_THREADS` if set, else one per core beyond the one
/// the Python side needs. 0 means no worker threads: each Python thread drives a `LocalRuntime`.
pub fn default_threads() -> usize {
    if let Some(n) = std::env::var("HORDE_RUNTIME_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
    {
        return n;
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    cores.saturating_sub(1)
}

/// The process's runtime, created on first call (and again in a forked child).
pub fn handle() -> Arc<Runtime> {
    let pid = std::process::id();
    let mut guard = lock(&RUNTIME);
    if let Some(owned) = guard.as_ref() {
        if owned.pid == pid {
            return owned.runtime.clone();
        }
    }
    if let Some(stale) = guard.take() {
        // Inherited across fork: its worker threads do not exist here, so dropping it would wait
        // forever for them. Leak it instead.
        std::mem::forget(stale);
    }
    let runtime = Arc::new(
        Builder::new_multi_thread()
            .worker_threads(default_threads().max(1))
            .thread_name("horde-io")
            .enable_all()
            .build()
            .expect("cannot start the tokio runtime"),
    );
    *guard = Some(Owned {
        pid,
        runtime: runtime.clone(),
    });
    runtime
}

/// A current-thread runtime driven by its owner's event loop instead of a thread of its own.
///
/// The owner watches `fileno()` (the reactor's epoll descriptor, readable while sockets or timers
/// have events for it) and calls `turn()` when it is readable, when it has new futures to start,
/// and every few milliseconds while futures are pending, so that timeouts fire. A turn never
/// blocks: it runs every task that can make progress and returns when all of them wait again.
pub struct LocalRuntime {
    /// Taken when dropped (see `Drop`); always present before that.
    runtime: Option<Runtime>,
    pid: u32,
    reactor_fd: RawFd,
    woken: Arc<AtomicBool>,
}

impl LocalRuntime {
    pub fn new() -> std::io::Result<Self> {
        let runtime = Builder::new_current_thread()
            .enable_all()
            // Run every ready task before looking at the reactor again: a turn ends only when the
            // run queue is empty, which `settle` relies on.
            .event_interval(u32::MAX)
            .build()?;
        let reactor_fd = reactor_fd(&runtime)?;
        Ok(LocalRuntime {
            runtime: Some(runtime),
            pid: std::process::id(),
            reactor_fd,
            woken: Arc::new(AtomicBool::new(false)),
        })
    }

    /// The descriptor to watch for readability.
    pub fn fileno(&self) -> RawFd {
        self.reactor_fd
    }

    /// Starts `futures`, then runs the runtime until every task waits for I/O or a timer.
    pub fn turn<F>(&self, futures: impl IntoIterator<Item = F>)
    where
        F: Future<Output = ()> + Send + Unpin + 'static,
    {
        let woken = &self.woken;
        let runtime = self.runtime.as_ref().expect("present until dropped");
        runtime.block_on(async move {
            for future in futures {
                tokio::spawn(Tracked {
                    future,
                    woken: woken.clone(),
                    waker: None,
                });
            }
            settle(woken).await;
        });
    }
}

impl Drop for LocalRuntime {
    fn drop(&mut self) {
        let Some(runtime) = self.runtime.take() else {
            return;
        };
        if self.pid == std::process::id() {
            // Not `drop`: that would wait for a DNS lookup stuck on the blocking pool.
            runtime.shutdown_background();
        } else {
            // Inherited across fork: its blocking threads do not exist here.
            std::mem::forget(runtime);
        }
    }
}

/// Yields to the scheduler until a whole pass (every queued task run, then one non-blocking look
/// at the reactor and the timers) wakes no task: the run queue is then empty.
async fn settle(woken: &AtomicBool) {
    loop {
        woken.store(false, Ordering::SeqCst);
        // Deferred by tokio until after the next non-blocking poll of the reactor.
        tokio::task::yield_now().await;
        if !woken.load(Ordering::SeqCst) {
            break;
        }
    }
}

/// A task whose wake-ups are noted in `woken`, so `settle` knows whether work is queued. Its
/// future is `Unpin` (requests come boxed), so polling it needs no pin projection.
struct Tracked<F> {
    future: F,
    woken: Arc<AtomicBool>,
    /// The scheduler's waker and ours around it, rebuilt only if the scheduler's changes.
    waker: Option<(Waker, Waker)>,
}

struct Flagged {
    inner: Waker,
    woken: Arc<AtomicBool>,
}

impl Wake for Flagged {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::SeqCst);
        self.inner.wake_by_ref();
    }
}

impl<F: Future<Output = ()> + Unpin> Future for Tracked<F> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let current = matches!(&this.waker, Some((inner, _)) if inner.will_wake(cx.waker()));
        if !current {
            let ours = Waker::from(Arc::new(Flagged {
                inner: cx.waker().clone(),
                woken: this.woken.clone(),
            }));
            this.waker = Some((cx.waker().clone(), ours));
        }
        let ours = &this.waker.as_ref().expect("set above").1;
        Pin::new(&mut this.future).poll(&mut Context::from_waker(ours))
    }
}

/// The epoll descriptor of `runtime`'s reactor. tokio does not expose it, so a socket pair is
/// registered with the reactor and the epoll instance whose interest list holds it is looked up in
/// /proc/self/fdinfo.
fn reactor_fd(runtime: &Runtime) -> std::io::Result<RawFd> {
    let _entered = runtime.enter();
    let (probe, _other) = tokio::net::UnixStream::pair()?;
    let target = probe.as_raw_fd();
    for entry in std::fs::read_dir("/proc/self/fd")? {
        let Some(fd) = entry?
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<RawFd>().ok())
        else {
            continue;
        };
        let is_epoll = std::fs::read_link(format!("/proc/self/fd/{fd}"))
            .is_ok_and(|link| link.as_os_str() == "anon_inode:[eventpoll]");
        if !is_epoll {
            continue;
        }
        let Ok(info) = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")) else {
            continue;
        };
        let holds_probe = info.lines().any(|line| {
            line.strip_prefix("tfd:")
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.parse::<RawFd>().ok())
                == Some(target)
        });
        if holds_probe {
            return Ok(fd);
        }
    }
    Err(std::io::Error::other(
        "cannot find the tokio reactor's epoll descriptor in /proc/self/fdinfo",
    ))
}

/// Runs a future, turning a panic inside it into `Err(message)`, so a bug in one request ends that
/// request rather than leaving its caller waiting forever (and a panic never unwinds into Python).
pub struct CatchPanic<F>(pub F);

impl<F: Future + Unpin> Future for CatchPanic<F> {
    type Output = Result<F::Output, String>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = Pin::new(&mut self.get_mut().0);
        match std::panic::catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Err(payload) => Poll::Ready(Err(panic_message(payload.as_ref()))),
        }
    }
}

pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_runtime_twice_in_one_process() {
        let a = handle();
        let b = handle();
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(a.block_on(async { 1 + 1 }), 2);
    }

    #[test]
    fn local_runtime_turns_until_tasks_wait() {
        use std::sync::atomic::AtomicUsize;
        let local = LocalRuntime::new().expect("runtime");
        assert!(local.fileno() >= 0);
        let done = Arc::new(AtomicUsize::new(0));
        // Tasks that yield a few times and spawn others all finish within one turn.
        let futures = (0..20).map(|_| {
            let done = done.clone();
            Box::pin(async move {
                for _ in 0..5 {
                    tokio::task::yield_now().await;
                }
                done.fetch_add(1, Ordering::SeqCst);
            })
        });
        local.turn(futures);
        assert_eq!(done.load(Ordering::SeqCst), 20);
        // A timer: pending after one turn, done after a turn past its deadline.
        let d = done.clone();
        local.turn([Box::pin(async move {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            d.fetch_add(1, Ordering::SeqCst);
        })]);
        assert_eq!(done.load(Ordering::SeqCst), 20);
        std::thread::sleep(std::time::Duration::from_millis(30));
        local.turn(std::iter::empty::<std::future::Ready<()>>());
        assert_eq!(done.load(Ordering::SeqCst), 21);
    }

    #[test]
    fn panics_become_errors() {
        let rt = handle();
        let r = rt.block_on(CatchPanic(Box::pin(async { panic!("boom") as i32 })));
        assert_eq!(r, Err("boom".to_owned()));
        assert_eq!(rt.block_on(CatchPanic(Box::pin(async { 3 }))), Ok(3));
    }
}

//! The one tokio runtime that runs every session's I/O. It is built on first use, never at import,
//! and rebuilt in a child after `fork()`: a forked child inherits the runtime's memory but none of
//! its threads, so the inherited object must be leaked, not used or dropped.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::runtime::{Builder, Runtime};

struct Owned {
    pid: u32,
    runtime: Arc<Runtime>,
}

static RUNTIME: Mutex<Option<Owned>> = Mutex::new(None);

/// Worker threads for the engine: `HORDE_RUNTIME_THREADS` if set, else one per core beyond the one
/// the Python side needs, at least one.
pub fn default_threads() -> usize {
    if let Some(n) = std::env::var("HORDE_RUNTIME_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|n| *n > 0)
    {
        return n;
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    cores.saturating_sub(1).max(1)
}

/// The process's runtime, created on first call (and again in a forked child).
pub fn handle() -> Arc<Runtime> {
    let pid = std::process::id();
    let mut guard = RUNTIME.lock().unwrap_or_else(|e| e.into_inner());
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
            .worker_threads(default_threads())
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

/// Runs a future, turning a panic inside it into `Err(message)`, so a bug in one request ends that
/// request rather than leaving its caller waiting forever.
pub struct CatchPanic<F>(pub F);

impl<F: Future> Future for CatchPanic<F> {
    type Output = Result<F::Output, String>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: the inner future is never moved out of the pinned wrapper.
        let inner = unsafe { self.map_unchecked_mut(|s| &mut s.0) };
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
    fn panics_become_errors() {
        let rt = handle();
        let r = rt.block_on(CatchPanic(async { panic!("boom") as i32 }));
        assert_eq!(r, Err("boom".to_owned()));
        assert_eq!(rt.block_on(CatchPanic(async { 3 })), Ok(3));
    }
}

//! horde's engine: per-user HTTP sessions (`client`), Locust's rules for what their results mean
//! (`locust`), and request statistics kept in HdrHistograms (`stats`, `samples`, and `outcomes`,
//! grouped for OpenTelemetry), and the master's socket (`router`). Nothing here knows about Python or owns a runtime: requests run on
//! whatever tokio runtime the caller drives, so `cargo test` exercises all of it directly.

use std::sync::{Mutex, MutexGuard};

pub mod client;
pub mod latencies;
pub mod locust;
pub mod outcomes;
mod report;
pub mod router;
pub mod samples;
pub mod stats;

pub use client::{
    ClientError, ErrorKind, Request, Response, Session, SessionConfig, Timeouts, TlsMode,
};
pub use locust::{Failure, Outcome, UserKind};
pub use stats::RequestStats;

/// Locks a mutex, carrying on if a panic poisoned it. The one policy for every lock in horde: the
/// state behind each (a pool, a cookie jar, the statistics) stays usable after a request panicked
/// halfway (that request is reported as failed), and carrying on beats losing the run's results.
pub fn lock<T: ?Sized>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

//! horde's engine: per-user HTTP sessions on one tokio runtime, request statistics kept in
//! HdrHistograms, and the demo target server. Nothing here knows about Python, so `cargo test`
//! exercises all of it directly.

pub mod client;
pub mod demo;
pub mod runtime;
pub mod samples;
pub mod stats;

pub use client::{
    ClientError, ErrorKind, FailurePolicy, Request, Response, Session, SessionConfig, Timeouts,
    TlsMode,
};
pub use stats::RequestStats;

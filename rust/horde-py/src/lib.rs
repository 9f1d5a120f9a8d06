//! `horde._core`: the Python face of horde-core. Arguments are turned into owned Rust values,
//! work runs on the engine's runtime without the GIL, and results come back in batches through
//! `Completions` (see bridge.rs).

use pyo3::prelude::*;

// The engine allocates in bursts: a flush starts every user's request at once and a drain frees
// them together, which overflows glibc's per-thread caches (7 blocks per size) on every batch, and
// each 1 KiB+ request made glibc merge its fast bins. mimalloc's free lists per page take these
// bursts in stride: 8.5% fewer instructions per request in all (45.1k vs 49.3k, callgrind, 50
// users looping GET /). Its transparent huge pages are off (Cargo feature no_thp): with them an
// idle user cost 1.7 KB more RSS (15,000 users), without them about what glibc needs.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod bridge;
mod demo;
mod router;
mod runtime;
mod session;
mod stats;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("USER_AGENT", horde_core::locust::USER_AGENT)?;
    m.add_class::<bridge::Completions>()?;
    m.add_class::<session::Session>()?;
    m.add_class::<session::Response>()?;
    m.add_class::<session::Headers>()?;
    m.add_class::<session::Proxies>()?;
    m.add_class::<stats::RequestStats>()?;
    m.add_class::<stats::StatsEntry>()?;
    m.add_class::<demo::DemoServer>()?;
    m.add_class::<router::Router>()?;
    m.add_function(wrap_pyfunction!(runtime_threads, m)?)?;
    m.add_function(wrap_pyfunction!(stats::bucket_response_time, m)?)?;
    m.add_function(wrap_pyfunction!(session::status_failure, m)?)?;
    Ok(())
}

/// Worker threads the engine's runtime uses (or will use when first started).
#[pyfunction]
fn runtime_threads() -> usize {
    runtime::default_threads()
}

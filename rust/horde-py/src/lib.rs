//! `horde._core`: the Python face of horde-core. Arguments are turned into owned Rust values,
//! work runs on the engine's runtime without the GIL, and results come back in batches through
//! `Completions` (see bridge.rs).

use pyo3::prelude::*;

mod bridge;
mod demo;
mod session;
mod stats;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<bridge::Completions>()?;
    m.add_class::<session::Session>()?;
    m.add_class::<session::Response>()?;
    m.add_class::<stats::RequestStats>()?;
    m.add_class::<stats::StatsEntry>()?;
    m.add_class::<demo::DemoServer>()?;
    m.add_function(wrap_pyfunction!(runtime_threads, m)?)?;
    Ok(())
}

/// Worker threads the engine's runtime uses (or will use when first started).
#[pyfunction]
fn runtime_threads() -> usize {
    horde_core::runtime::default_threads()
}

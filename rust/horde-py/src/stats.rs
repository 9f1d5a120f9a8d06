//! Request statistics for Python: logging (for outcomes decided in Python) and snapshots.
//! A snapshot is taken under the engine's lock in one go; its entries share it.

use std::collections::BTreeMap;
use std::sync::Arc;

use numpy::{IntoPyArray, PyArray1};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use horde_core::locust::{flat_buckets, EntryDict};
use horde_core::stats::{
    histogram_buckets, now_epoch_secs, RequestRecord, StatsEntry as Entry, StatsSnapshot,
};

#[pyclass(frozen, subclass, module = "horde._core")]
pub struct RequestStats {
    inner: Arc<horde_core::RequestStats>,
}

impl RequestStats {
    pub(crate) fn shared(&self) -> Arc<horde_core::RequestStats> {
        self.inner.clone()
    }
}

#[pymethods]
impl RequestStats {
    /// Arguments are accepted and ignored so Python subclasses can take their own in `__init__`.
    #[new]
    #[pyo3(signature = (*_args, **_kwargs))]
    fn new(
        _args: &Bound<'_, pyo3::types::PyTuple>,
        _kwargs: Option<&Bound<'_, pyo3::types::PyDict>>,
    ) -> Self {
        RequestStats {
            inner: Arc::new(horde_core::RequestStats::new()),
        }
    }

    /// Logs one request; `error` (the failure's text) marks it failed; `status` is kept only
    /// in the samples. `service_time` (ms): the uncorrected time of an open-model request whose
    /// `response_time` counts from its scheduled start; `own_delay` (µs): horde's own delay.
    // The arguments of one Python call (a listener's, per request): see Session.submit.
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (method, name, response_time, response_length=0, error=None, status=0,
                        service_time=None, own_delay=None))]
    fn log(
        &self,
        method: &str,
        name: &str,
        response_time: Option<f64>,
        response_length: u64,
        error: Option<&str>,
        status: u16,
        service_time: Option<f64>,
        own_delay: Option<u64>,
    ) {
        let record = RequestRecord {
            method,
            name,
            response_time_ms: response_time,
            content_length: response_length,
            error,
            status,
            service_ms: service_time,
            own_delay_us: own_delay,
        };
        self.inner.record(&record, now_epoch_secs());
    }

    /// Counts `n` arrivals of the open model that were dropped (no user free, pool at its maximum).
    fn record_dropped_iterations(&self, n: u64) {
        self.inner.record_dropped_iterations(n, now_epoch_secs());
    }

    /// Figures of the whole run besides the entries: `own_delay` (the histogram of horde's own
    /// delay per request as numpy (µs values, counts)), `own_delay_count`, `folded_requests`
    /// (counted under the overflow row, see `set_max_entries`), `dropped_iterations`
    /// and `dropped_per_sec` ({epoch second: dropped}).
    fn run_figures<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let snap = py.detach(|| self.inner.snapshot());
        let (values, counts) = histogram_buckets(&snap.own_delay);
        let out = PyDict::new(py);
        out.set_item(
            "own_delay",
            (values.into_pyarray(py), counts.into_pyarray(py)),
        )?;
        out.set_item("own_delay_count", snap.own_delay.len())?;
        out.set_item("dropped_iterations", snap.dropped_iterations)?;
        out.set_item("dropped_per_sec", snap.dropped_per_sec)?;
        out.set_item("folded_requests", self.inner.folded())?;
        Ok(out)
    }

    /// Keeps at most `max` rows (0: no limit); requests with further names are counted in one
    /// row per method named "Too many unique request names".
    fn set_max_entries(&self, max: usize) {
        self.inner.set_max_entries(max);
    }

    /// In the open model every request gets a service time (its response time unless a
    /// corrected one is logged), so the service histograms cover what the response times do.
    fn set_open_model(&self, open: bool) {
        self.inner.set_open_model(open);
    }

    /// The row limit (see `set_max_entries`).
    #[getter]
    fn max_entries(&self) -> usize {
        self.inner.max_entries()
    }

    /// Starts keeping response times by Locust's OpenTelemetry attributes (`--otel`): request
    /// name (at most 20, as Locust) and the failure's exception class. Resets leave them alone.
    fn track_outcomes(&self) {
        self.inner.track_outcomes();
    }

    /// The response times by OpenTelemetry attributes since the previous call, then zeroed: a
    /// list of `(name, error_type or None, values, counts, sum_ms, min_ms, max_ms)`, where
    /// `values` (µs, the highest of each HDR bucket) and `counts` are numpy uint64 arrays.
    #[allow(clippy::type_complexity)]
    fn take_outcomes<'py>(
        &self,
        py: Python<'py>,
    ) -> Vec<(
        String,
        Option<String>,
        Bound<'py, PyArray1<u64>>,
        Bound<'py, PyArray1<u64>>,
        f64,
        f64,
        f64,
    )> {
        let taken = py.detach(|| self.inner.take_outcomes());
        taken
            .into_iter()
            .map(|s| {
                let (values, counts) = histogram_buckets(&s.histogram);
                (
                    s.name,
                    s.error_type,
                    values.into_pyarray(py),
                    counts.into_pyarray(py),
                    s.sum_ms,
                    s.min_ms,
                    s.max_ms,
                )
            })
            .collect()
    }

    /// Ignores requests logged from now on until `clear_all` (the end of a run).
    fn freeze(&self) {
        self.inner.freeze();
    }

    /// Keeps every request from now on as a sample, at most `cap` (see `take_samples`).
    fn record_samples(&self, cap: usize) {
        self.inner.record_samples(cap);
    }

    /// `(kept, dropped)` samples so far.
    fn samples_len(&self) -> (usize, u64) {
        self.inner.samples_len()
    }

    /// Hands over the samples kept so far as numpy arrays without copying them: a dict with
    /// `origin` (epoch s), `start_us` (uint64), `latency_us` (uint32), `status` (uint16),
    /// `bytes` (uint32), `key` (uint32), `ok` (bool), `own_delay_us` (uint32), `service_us`
    /// (uint32, open model; else None), `keys` [(method, name)], `dropped`. None when recording
    /// is off.
    fn take_samples<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let Some(s) = py.detach(|| self.inner.take_samples()) else {
            return Ok(None);
        };
        let d = PyDict::new(py);
        let n = s.key.len();
        d.set_item("origin", s.origin)?;
        d.set_item("start_us", s.start_us.into_pyarray(py))?;
        d.set_item("latency_us", s.latency_us.into_pyarray(py))?;
        d.set_item("status", s.status.into_pyarray(py))?;
        d.set_item("bytes", s.bytes.into_pyarray(py))?;
        d.set_item("key", s.key.into_pyarray(py))?;
        d.set_item("ok", s.ok.into_pyarray(py))?;
        d.set_item("own_delay_us", s.own_delay_us.into_pyarray(py))?;
        // The service-time column exists only in the open model (as long as the others once it
        // has started).
        if s.service_us.is_empty() {
            d.set_item("service_us", py.None())?;
        } else {
            debug_assert_eq!(s.service_us.len(), n);
            d.set_item("service_us", s.service_us.into_pyarray(py))?;
        }
        d.set_item("keys", s.keys)?;
        d.set_item("dropped", s.dropped)?;
        Ok(Some(d))
    }

    /// Counts a failure without a request (Locust's `log_error` on its own).
    fn log_error(&self, method: &str, name: &str, error: &str) {
        self.inner.log_error_only(method, name, error);
    }

    /// `(entries sorted by (name, method), total, errors, start_time)`; errors are
    /// `(method, name, error, occurrences, first_seen, last_seen)` tuples.
    #[allow(clippy::type_complexity)]
    fn snapshot(
        &self,
        py: Python<'_>,
    ) -> PyResult<(
        Vec<StatsEntry>,
        StatsEntry,
        Vec<(String, String, String, u64, f64, f64)>,
        f64,
    )> {
        let snap = Arc::new(py.detach(|| self.inner.snapshot()));
        let entries = (0..snap.entries.len())
            .map(|i| StatsEntry {
                snap: snap.clone(),
                index: Some(i),
            })
            .collect();
        let errors = snap
            .errors
            .iter()
            .map(|e| {
                (
                    e.method.clone(),
                    e.name.clone(),
                    e.error.clone(),
                    e.occurrences,
                    e.first_seen,
                    e.last_seen,
                )
            })
            .collect();
        let start = snap.start_time;
        Ok((entries, StatsEntry { snap, index: None }, errors, start))
    }

    /// What a worker reports: everything since the previous call, then zeroed, in one go so no
    /// request falls between the report and the reset. `(entries, total, errors, own_delay)`:
    /// Locust's serialised entries (each with its exact histogram's buckets under `hdr_buckets`) of the
    /// entries with requests or failures, the total's, the errors as `snapshot()` gives them, and
    /// horde's own delay since the last report (recorded buckets, value/count flat, for a horde
    /// master).
    #[allow(clippy::type_complexity)]
    fn take_report<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<(
        Vec<Bound<'py, PyDict>>,
        Bound<'py, PyDict>,
        Vec<(String, String, String, u64, f64, f64)>,
        Vec<u64>,
    )> {
        let deltas = py.detach(|| self.inner.take_deltas());
        let entries = deltas
            .entries
            .iter()
            .map(|e| entry_dict_to_py(py, EntryDict::with_histogram(e)))
            .collect::<PyResult<_>>()?;
        let total = entry_dict_to_py(py, EntryDict::with_histogram(&deltas.total))?;
        let own_delay = flat_buckets(&deltas.own_delay);
        let errors = deltas
            .errors
            .into_iter()
            .map(|e| {
                (
                    e.method,
                    e.name,
                    e.error,
                    e.occurrences,
                    e.first_seen,
                    e.last_seen,
                )
            })
            .collect();
        Ok((entries, total, errors, own_delay))
    }

    /// The total ("Aggregated") alone, from a snapshot that copies nothing else.
    fn total_only(&self, py: Python<'_>) -> StatsEntry {
        let snap = Arc::new(py.detach(|| self.inner.snapshot_total()));
        StatsEntry { snap, index: None }
    }

    /// Zeroes every entry (keeping them) and clears the errors, as Locust's `reset_all`.
    fn reset_all(&self) {
        self.inner.reset_all();
    }

    /// Removes every entry and error.
    fn clear_all(&self) {
        self.inner.clear_all();
    }

    fn __len__(&self) -> usize {
        self.inner.num_entries()
    }
}

/// One row of a snapshot, with Locust's StatsEntry attribute names.
#[pyclass(frozen, module = "horde._core")]
pub struct StatsEntry {
    snap: Arc<StatsSnapshot>,
    /// None for the total ("Aggregated").
    index: Option<usize>,
}

impl StatsEntry {
    fn e(&self) -> &Entry {
        match self.index {
            Some(i) => &self.snap.entries[i],
            None => &self.snap.total,
        }
    }
}

#[pymethods]
impl StatsEntry {
    #[getter]
    fn name(&self) -> &str {
        &self.e().name
    }
    #[getter]
    fn method(&self) -> &str {
        &self.e().method
    }
    #[getter]
    fn num_requests(&self) -> u64 {
        self.e().num_requests
    }
    #[getter]
    fn num_none_requests(&self) -> u64 {
        self.e().num_none_requests
    }
    #[getter]
    fn num_failures(&self) -> u64 {
        self.e().num_failures
    }
    /// Sum of the response times, ms (see `as_logged`).
    #[getter]
    fn total_response_time<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        as_logged(py, self.e().total_response_time)
    }
    #[getter]
    fn min_response_time<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.e()
            .min_response_time
            .map(|v| as_logged(py, v))
            .transpose()
    }
    #[getter]
    fn max_response_time<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        as_logged(py, self.e().max_response_time)
    }
    #[getter]
    fn total_content_length(&self) -> u64 {
        self.e().total_content_length
    }
    #[getter]
    fn start_time(&self) -> f64 {
        self.e().start_time
    }
    #[getter]
    fn last_request_timestamp(&self) -> Option<f64> {
        self.e().last_request_timestamp
    }
    #[getter]
    fn avg_response_time(&self) -> f64 {
        self.e().avg_response_time()
    }
    #[getter]
    fn median_response_time(&self) -> f64 {
        self.e().median_response_time()
    }
    #[getter]
    fn avg_content_length(&self) -> f64 {
        self.e().avg_content_length()
    }
    #[getter]
    fn fail_ratio(&self) -> f64 {
        self.e().fail_ratio()
    }
    #[getter]
    fn total_rps(&self) -> f64 {
        self.snap.total_rps(self.e())
    }
    #[getter]
    fn total_fail_per_sec(&self) -> f64 {
        self.snap.total_fail_per_sec(self.e())
    }
    /// Requests/s over the ~10 s ending 2 s before the last request (Locust's window).
    #[getter]
    fn current_rps(&self) -> f64 {
        self.snap.current_rps(self.e())
    }
    #[getter]
    fn current_fail_per_sec(&self) -> f64 {
        self.snap.current_fail_per_sec(self.e())
    }
    #[getter]
    fn num_reqs_per_sec(&self) -> BTreeMap<i64, u64> {
        self.e().num_reqs_per_sec.clone()
    }
    #[getter]
    fn num_fail_per_sec(&self) -> BTreeMap<i64, u64> {
        self.e().num_fail_per_sec.clone()
    }
    /// The histogram in Locust's rounded-millisecond buckets.
    #[getter]
    fn response_times(&self) -> BTreeMap<u64, u64> {
        self.e().to_locust_response_times()
    }
    /// Response time in ms at quantile `percent` (0..1), from the HDR histogram.
    fn get_response_time_percentile(&self, percent: f64) -> f64 {
        self.e().get_response_time_percentile(percent)
    }
    /// Open model: the uncorrected service times' histogram as ``histogram()`` gives the response
    /// times'; None in a closed-model run.
    #[allow(clippy::type_complexity)]
    fn service_histogram<'py>(
        &self,
        py: Python<'py>,
    ) -> Option<(Bound<'py, PyArray1<u64>>, Bound<'py, PyArray1<u64>>)> {
        let (values, counts) = histogram_buckets(self.e().service_histogram()?);
        Some((values.into_pyarray(py), counts.into_pyarray(py)))
    }

    /// The HDR histogram's non-empty buckets as numpy arrays: (highest µs value of each bucket,
    /// its count), ascending.
    fn histogram<'py>(
        &self,
        py: Python<'py>,
    ) -> (Bound<'py, PyArray1<u64>>, Bound<'py, PyArray1<u64>>) {
        let (values, counts) = self.e().recorded_buckets();
        (values.into_pyarray(py), counts.into_pyarray(py))
    }
    /// Locust's `StatsEntry.serialize()`: the dict `--json` prints and workers send; with
    /// `hdr=True` also the exact histogram's buckets under `hdr_buckets`, as a horde worker sends.
    #[pyo3(signature = (hdr=false))]
    fn serialize<'py>(&self, py: Python<'py>, hdr: bool) -> PyResult<Bound<'py, PyDict>> {
        let d = if hdr {
            EntryDict::with_histogram(self.e())
        } else {
            EntryDict::from(self.e())
        };
        entry_dict_to_py(py, d)
    }
    fn __repr__(&self) -> String {
        let e = self.e();
        format!(
            "<StatsEntry {} {} requests={} failures={}>",
            e.method, e.name, e.num_requests, e.num_failures
        )
    }
}

/// Locust's `bucket_response_time`: the rounded-ms key a response time (ms) is counted under in
/// `StatsEntry.response_times`.
#[pyfunction]
pub fn bucket_response_time(response_time: f64) -> u64 {
    horde_core::stats::bucket_response_time(response_time)
}

/// A time in ms as Locust's counters would hold it: Python starts them as the int 0 and custom
/// clients often log whole milliseconds as ints, so a whole number is an int ("5", not "5.0" in
/// the CSV and JSON files); the engine keeps every time as a float.
fn as_logged(py: Python<'_>, ms: f64) -> PyResult<Bound<'_, PyAny>> {
    if ms.fract() == 0.0 && ms.abs() < 9.0e15 {
        Ok((ms as i64).into_pyobject(py)?.into_any())
    } else {
        Ok(ms.into_pyobject(py)?.into_any())
    }
}

/// Locust's serialised entry as a Python dict (int keys in the maps, as Locust's), with
/// `hdr_buckets` when present.
fn entry_dict_to_py(py: Python<'_>, d: EntryDict) -> PyResult<Bound<'_, PyDict>> {
    let out = PyDict::new(py);
    out.set_item("name", d.name)?;
    out.set_item("method", d.method)?;
    out.set_item("last_request_timestamp", d.last_request_timestamp)?;
    out.set_item("start_time", d.start_time)?;
    out.set_item("num_requests", d.num_requests)?;
    out.set_item("num_none_requests", d.num_none_requests)?;
    out.set_item("num_failures", d.num_failures)?;
    out.set_item("total_response_time", as_logged(py, d.total_response_time)?)?;
    out.set_item("max_response_time", as_logged(py, d.max_response_time)?)?;
    let min = d.min_response_time.map(|v| as_logged(py, v)).transpose()?;
    out.set_item("min_response_time", min)?;
    out.set_item("total_content_length", d.total_content_length)?;
    out.set_item("response_times", d.response_times)?;
    out.set_item("num_reqs_per_sec", d.num_reqs_per_sec)?;
    out.set_item("num_fail_per_sec", d.num_fail_per_sec)?;
    if let Some(buckets) = d.hdr_buckets {
        out.set_item("hdr_buckets", buckets)?;
    }
    Ok(out)
}

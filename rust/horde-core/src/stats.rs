//! Request statistics with Locust's semantics: one `StatsEntry` per (method, name) plus the
//! "Aggregated" total, an error table, and cheap deep-copy snapshots for the Python side.
//! Response times go into HdrHistograms (µs); Locust's rounded-ms buckets are derived on demand.

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use rustc_hash::FxHashMap;

pub use crate::latencies::Latencies;
use crate::lock;
use crate::outcomes::{OutcomeHistograms, OutcomeSeries};
use crate::samples::{Recorder, Samples};

/// Name of the total entry, as Locust spells it (its method is "").
pub const AGGREGATED_NAME: &str = "Aggregated";

/// The row, one per method, that requests fold into once the table has `max_entries` rows
/// (Locust's OpenTelemetry export names its overflow the same).
pub const FOLDED_NAME: &str = "Too many unique request names";

/// Rows kept by default before further names fold into `FOLDED_NAME`.
pub const DEFAULT_MAX_ENTRIES: usize = 10_000;

/// Locust's `PERCENTILES_TO_REPORT`, for the console and CSV percentile tables.
pub const PERCENTILES_TO_REPORT: [f64; 11] = [
    0.50, 0.66, 0.75, 0.80, 0.90, 0.95, 0.98, 0.99, 0.999, 0.9999, 1.0,
];

/// The auto-resizing histogram tops out near i64::MAX / 2; clamping far below that (about 35
/// years in µs) means recording can never fail, whatever a caller passes in.
const MAX_RECORDABLE_US: u64 = 1 << 50;

/// Current wall-clock time as float epoch seconds, like Python's `time.time()`.
pub fn now_epoch_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Python's `int(t)` for the per-second maps: truncation toward zero, which `as` also does.
fn epoch_second(t: f64) -> i64 {
    t as i64
}

/// Locust's `bucket_response_time`: the rounded-ms key a response time is counted under in
/// `StatsEntry.response_times`, with Python's round-half-to-even.
pub fn bucket_response_time(rt_ms: f64) -> u64 {
    // NaN and negatives cannot come from a clock difference; file them under 0.
    if rt_ms.is_nan() || rt_ms <= 0.0 {
        return 0;
    }
    let step = if rt_ms < 100.0 {
        1.0
    } else if rt_ms < 1_000.0 {
        10.0
    } else if rt_ms < 10_000.0 {
        100.0
    } else {
        1_000.0
    };
    round_half_even_to(rt_ms, step) as u64
}

/// Rounds `x` to a multiple of `step` the way Python's `round(x, -k)` does: decided on the
/// exact remainder, ties to the even multiple. Dividing first and rounding the quotient could
/// misjudge a tie after the division's own rounding.
fn round_half_even_to(x: f64, step: f64) -> f64 {
    let mut q = (x / step).floor();
    let mut rem = x - q * step;
    // The division may have rounded up to the next integer; step back so 0 <= rem < step.
    if rem < 0.0 {
        q -= 1.0;
        rem += step;
    }
    let twice = rem * 2.0;
    if twice < step {
        q * step
    } else if twice > step {
        (q + 1.0) * step
    } else if q % 2.0 == 0.0 {
        q * step
    } else {
        (q + 1.0) * step
    }
}

/// Milliseconds to the histogram's whole microseconds; 0 µs is not trackable, so clamp to 1.
pub(crate) fn ms_to_us(ms: f64) -> u64 {
    let us = (ms * 1000.0).round();
    if us.is_nan() || us < 1.0 {
        1
    } else if us >= MAX_RECORDABLE_US as f64 {
        MAX_RECORDABLE_US
    } else {
        us as u64
    }
}

/// A row's recorded values: (µs value, count), ascending (a histogram's non-empty buckets by
/// their highest value).
pub fn histogram_buckets(h: &Latencies) -> (Vec<u64>, Vec<u64>) {
    h.iter().unzip()
}

/// Bumps the count for `second`; requests arrive in time order, so the last key is the
/// usual hit and is checked before the tree walk.
fn bump_second(map: &mut BTreeMap<i64, u64>, second: i64, by: u64) {
    if let Some(mut last) = map.last_entry() {
        if *last.key() == second {
            *last.get_mut() += by;
            return;
        }
    }
    *map.entry(second).or_insert(0) += by;
}

/// Locust's current_rps / current_fail_per_sec window: the average over the seconds
/// `range(max(last - 12, int(start)), last - 2)`, which skips the 2 seconds still filling up.
fn window_average(per_sec: &BTreeMap<i64, u64>, last_ref: Option<i64>, start_time: f64) -> f64 {
    let Some(last) = last_ref else {
        return 0.0;
    };
    let from = (last - 12).max(epoch_second(start_time));
    let to = last - 2;
    if from >= to {
        return 0.0;
    }
    // Seconds absent from the map count as 0, so summing the present ones is enough.
    let sum: u64 = per_sec.range(from..to).map(|(_, n)| *n).sum();
    sum as f64 / (to - from) as f64
}

/// Locust's total_rps / total_fail_per_sec: a count over the whole span since start_time.
fn rate_since_start(count: u64, start_time: f64, last: Option<f64>) -> f64 {
    match last {
        // Locust treats a zero start or end as "no data", and a zero span as rate 0.
        Some(last) if last != 0.0 && start_time != 0.0 && last > start_time => {
            count as f64 / (last - start_time)
        }
        _ => 0.0,
    }
}

/// Statistics for one (method, name), or for the "Aggregated" total.
#[derive(Clone, Debug)]
pub struct StatsEntry {
    pub name: String,
    pub method: String,
    pub num_requests: u64,
    /// Requests logged without a response time; they count as requests but stay out of
    /// min/max/avg and the histogram.
    pub num_none_requests: u64,
    pub num_failures: u64,
    /// Sum of the response times in ms.
    pub total_response_time: f64,
    /// Exact, in ms; None until the first timed request.
    pub min_response_time: Option<f64>,
    /// Exact, in ms; 0 until the first timed request.
    pub max_response_time: f64,
    pub total_content_length: u64,
    /// Epoch seconds of creation or of the last reset.
    pub start_time: f64,
    pub last_request_timestamp: Option<f64>,
    /// Requests per epoch second.
    pub num_reqs_per_sec: BTreeMap<i64, u64>,
    /// Failures per epoch second.
    pub num_fail_per_sec: BTreeMap<i64, u64>,
    /// Response times in µs (≥ 1).
    histogram: Latencies,
    /// In the open model, where response times count from each iteration's scheduled start, the
    /// uncorrected service times (µs) beside them; None until one is recorded.
    service: Option<Box<Latencies>>,
}

impl StatsEntry {
    /// An empty entry whose start_time is now.
    pub fn new(name: &str, method: &str) -> Self {
        Self::new_at(name, method, now_epoch_secs())
    }

    /// An empty entry with the given start_time (epoch seconds).
    pub fn new_at(name: &str, method: &str, start_time: f64) -> Self {
        StatsEntry {
            name: name.to_owned(),
            method: method.to_owned(),
            num_requests: 0,
            num_none_requests: 0,
            num_failures: 0,
            total_response_time: 0.0,
            min_response_time: None,
            max_response_time: 0.0,
            total_content_length: 0,
            start_time,
            last_request_timestamp: None,
            num_reqs_per_sec: BTreeMap::new(),
            num_fail_per_sec: BTreeMap::new(),
            histogram: Latencies::new(),
            service: None,
        }
    }

    /// The response times, in µs.
    pub fn histogram(&self) -> &Latencies {
        &self.histogram
    }

    /// The uncorrected service times (µs) of an open-model run; None in a closed one.
    pub fn service_histogram(&self) -> Option<&Latencies> {
        self.service.as_deref()
    }

    /// Counts one uncorrected service time (ms) beside the corrected response time.
    pub fn log_service_time(&mut self, ms: f64) {
        self.service
            .get_or_insert_with(Box::default)
            .record(ms_to_us(ms));
    }

    /// Counts one request made at `now` (epoch seconds); Locust's `StatsEntry.log`.
    pub fn log(&mut self, response_time_ms: Option<f64>, content_length: u64, now: f64) {
        self.num_requests += 1;
        bump_second(&mut self.num_reqs_per_sec, epoch_second(now), 1);
        self.last_request_timestamp = Some(now);
        self.total_content_length += content_length;
        let Some(rt) = response_time_ms else {
            self.num_none_requests += 1;
            return;
        };
        self.total_response_time += rt;
        self.min_response_time = Some(match self.min_response_time {
            Some(min) => min.min(rt),
            None => rt,
        });
        self.max_response_time = self.max_response_time.max(rt);
        self.histogram.record(ms_to_us(rt));
    }

    /// Counts one failure at `now`; Locust's `StatsEntry.log_error` (the request itself is
    /// logged separately).
    pub fn log_failure(&mut self, now: f64) {
        self.num_failures += 1;
        bump_second(&mut self.num_fail_per_sec, epoch_second(now), 1);
    }

    /// Mean response time in ms over the timed requests, 0 when there are none.
    pub fn avg_response_time(&self) -> f64 {
        let timed = self.num_requests.saturating_sub(self.num_none_requests);
        if timed == 0 {
            0.0
        } else {
            self.total_response_time / timed as f64
        }
    }

    /// The 50th percentile in ms.
    pub fn median_response_time(&self) -> f64 {
        self.get_response_time_percentile(0.5)
    }

    /// Response time (ms) within which fraction `p` (0..=1) of the timed requests finished; 0
    /// when nothing was timed. Clamped to the exact [min, max], since a histogram bucket's edge
    /// may lie slightly outside them (so p = 1.0 gives exactly the max).
    pub fn get_response_time_percentile(&self, p: f64) -> f64 {
        if self.histogram.is_empty() {
            return 0.0;
        }
        let p = if p.is_nan() { 0.0 } else { p.clamp(0.0, 1.0) };
        let mut ms = self.histogram.value_at_quantile(p) as f64 / 1000.0;
        if self.max_response_time > 0.0 {
            ms = ms.min(self.max_response_time);
        }
        if let Some(min) = self.min_response_time {
            ms = ms.max(min);
        }
        ms
    }

    /// The histogram's non-empty buckets: (highest µs value of the bucket, count), ascending.
    /// Enough to answer every quantile exactly as `get_response_time_percentile` does, later
    /// and elsewhere (saved results).
    pub fn recorded_buckets(&self) -> (Vec<u64>, Vec<u64>) {
        histogram_buckets(&self.histogram)
    }

    /// Failures per request; 1.0 when there are failures but no requests (Locust's rule).
    pub fn fail_ratio(&self) -> f64 {
        if self.num_requests == 0 {
            if self.num_failures > 0 {
                1.0
            } else {
                0.0
            }
        } else {
            self.num_failures as f64 / self.num_requests as f64
        }
    }

    /// Mean content length in bytes, 0 with no requests.
    pub fn avg_content_length(&self) -> f64 {
        if self.num_requests == 0 {
            0.0
        } else {
            self.total_content_length as f64 / self.num_requests as f64
        }
    }

    /// Requests per second over this entry's own span (start_time to last request). Locust
    /// measures every entry against the total's span instead: see `StatsSnapshot::total_rps`.
    pub fn total_rps(&self) -> f64 {
        rate_since_start(
            self.num_requests,
            self.start_time,
            self.last_request_timestamp,
        )
    }

    /// Failures per second over this entry's own span.
    pub fn total_fail_per_sec(&self) -> f64 {
        rate_since_start(
            self.num_failures,
            self.start_time,
            self.last_request_timestamp,
        )
    }

    /// Locust's current_rps with `now_ref = int(total.last_request_timestamp)`, windowed from
    /// this entry's start_time. For Locust's exact figure (window from the total's start_time)
    /// use `current_rps_from` or `StatsSnapshot::current_rps`.
    pub fn current_rps(&self, now_ref: Option<i64>) -> f64 {
        window_average(&self.num_reqs_per_sec, now_ref, self.start_time)
    }

    /// Like `current_rps`, for failures.
    pub fn current_fail_per_sec(&self, now_ref: Option<i64>) -> f64 {
        window_average(&self.num_fail_per_sec, now_ref, self.start_time)
    }

    /// current_rps with an explicit window start (Locust passes the total's start_time).
    pub fn current_rps_from(&self, now_ref: Option<i64>, start_time: f64) -> f64 {
        window_average(&self.num_reqs_per_sec, now_ref, start_time)
    }

    /// current_fail_per_sec with an explicit window start.
    pub fn current_fail_per_sec_from(&self, now_ref: Option<i64>, start_time: f64) -> f64 {
        window_average(&self.num_fail_per_sec, now_ref, start_time)
    }

    /// Adds another entry's data into this one; Locust's `StatsEntry.extend`.
    pub fn merge(&mut self, other: &StatsEntry) {
        self.last_request_timestamp =
            match (self.last_request_timestamp, other.last_request_timestamp) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
        self.start_time = self.start_time.min(other.start_time);
        self.num_requests += other.num_requests;
        self.num_none_requests += other.num_none_requests;
        self.num_failures += other.num_failures;
        self.total_response_time += other.total_response_time;
        self.max_response_time = self.max_response_time.max(other.max_response_time);
        self.min_response_time = match (self.min_response_time, other.min_response_time) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.total_content_length += other.total_content_length;
        for (&sec, &n) in &other.num_reqs_per_sec {
            *self.num_reqs_per_sec.entry(sec).or_insert(0) += n;
        }
        for (&sec, &n) in &other.num_fail_per_sec {
            *self.num_fail_per_sec.entry(sec).or_insert(0) += n;
        }
        self.histogram.add(&other.histogram);
        if let Some(theirs) = &other.service {
            self.service.get_or_insert_with(Box::default).add(theirs);
        }
    }

    /// Zeroes every counter and the histogram (keeping its allocation) and restarts the clock.
    pub fn reset(&mut self, now: f64) {
        self.num_requests = 0;
        self.num_none_requests = 0;
        self.num_failures = 0;
        self.total_response_time = 0.0;
        self.min_response_time = None;
        self.max_response_time = 0.0;
        self.total_content_length = 0;
        self.start_time = now;
        self.last_request_timestamp = None;
        self.num_reqs_per_sec.clear();
        self.num_fail_per_sec.clear();
        self.histogram.reset();
        if let Some(service) = &mut self.service {
            service.reset();
        }
    }

    /// The histogram as Locust's `response_times` map: {rounded ms bucket: count}. Each HDR
    /// bucket is placed by its centre, so values within one HDR bucket (0.1%) of a Locust
    /// rounding boundary may land in the neighbouring Locust bucket.
    pub fn to_locust_response_times(&self) -> BTreeMap<u64, u64> {
        let mut out = BTreeMap::new();
        for (value, count) in self.histogram.iter() {
            let (lo, hi) = self.histogram.span(value);
            let centre_ms = (lo + hi) as f64 / 2.0 / 1000.0;
            *out.entry(bucket_response_time(centre_ms)).or_insert(0) += count;
        }
        out
    }

    /// Counts `n` response times of `us` µs into the histogram only (merging a worker's buckets).
    pub fn record_us(&mut self, us: u64, n: u64) {
        self.histogram.record_n(us.clamp(1, MAX_RECORDABLE_US), n);
    }

    /// Counts `n` requests taking `ms` into the histogram only (for entries rebuilt from
    /// Locust's bucketed response times; the other figures are set directly).
    pub fn record_times(&mut self, ms: f64, n: u64) {
        self.histogram.record_n(ms_to_us(ms), n);
    }
}

/// One row of the error table: how often `error` happened for (method, name).
#[derive(Clone, Debug, PartialEq)]
pub struct ErrorEntry {
    pub method: String,
    pub name: String,
    /// The error text as the caller formatted it (Locust keys on `repr(error)`).
    pub error: String,
    pub occurrences: u64,
    pub first_seen: f64,
    pub last_seen: f64,
}

/// A deep copy of everything, taken under the lock in one go, so it is self-consistent.
#[derive(Clone, Debug)]
pub struct StatsSnapshot {
    /// Sorted by (name, method), the order of Locust's tables.
    pub entries: Vec<StatsEntry>,
    pub total: StatsEntry,
    /// In first-seen order.
    pub errors: Vec<ErrorEntry>,
    /// The total's start_time (Locust's `RequestStats.start_time`).
    pub start_time: f64,
    /// horde's own delay per request, µs (see `RequestStats::record_own_delay`).
    pub own_delay: Latencies,
    /// Open model: arrivals dropped, in all and per epoch second.
    pub dropped_iterations: u64,
    pub dropped_per_sec: BTreeMap<i64, u64>,
}

impl StatsSnapshot {
    /// `int(total.last_request_timestamp)`: the reference second of Locust's current rates.
    pub fn now_ref(&self) -> Option<i64> {
        self.total.last_request_timestamp.map(epoch_second)
    }

    /// Locust's `entry.current_rps`: windowed on the total's last request and start_time.
    pub fn current_rps(&self, entry: &StatsEntry) -> f64 {
        entry.current_rps_from(self.now_ref(), self.start_time)
    }

    /// Locust's `entry.current_fail_per_sec`.
    pub fn current_fail_per_sec(&self, entry: &StatsEntry) -> f64 {
        entry.current_fail_per_sec_from(self.now_ref(), self.start_time)
    }

    /// Locust's `entry.total_rps`: over the total's span, whichever entry is asked about.
    pub fn total_rps(&self, entry: &StatsEntry) -> f64 {
        rate_since_start(
            entry.num_requests,
            self.start_time,
            self.total.last_request_timestamp,
        )
    }

    /// Locust's `entry.total_fail_per_sec`.
    pub fn total_fail_per_sec(&self, entry: &StatsEntry) -> f64 {
        rate_since_start(
            entry.num_failures,
            self.start_time,
            self.total.last_request_timestamp,
        )
    }
}

struct Inner {
    /// name -> method -> entry: two levels so that a hit is found with borrowed `&str`s and
    /// the hot path allocates nothing. FxHash: SipHash on these two lookups was ~1% of a
    /// request's instructions, and a load generator's own stats keys need no protection from
    /// collisions.
    entries: FxHashMap<String, FxHashMap<String, StatsEntry>>,
    num_entries: usize,
    total: StatsEntry,
    /// Kept in first-seen order, like Locust's dict.
    errors: Vec<ErrorEntry>,
    /// hash of (method, name, error) -> indices into `errors`; hashing borrowed strings lets a
    /// repeated error be found without building an owned key.
    error_index: HashMap<u64, Vec<usize>>,
    hasher: RandomState,
    /// Every request as a sample, when asked for (library runs); None costs one branch.
    recorder: Option<Recorder>,
    /// Set when a run has ended: requests still in flight then (their users were stopped)
    /// complete without being counted, so the final figures and samples agree.
    frozen: bool,
    /// horde's own delay per request (µs): from the user's call until the request was written,
    /// plus from the last byte until the user ran again.
    own_delay: Latencies,
    /// Open model: arrivals dropped because no user was free and the pool was at its maximum.
    dropped_iterations: u64,
    dropped_per_sec: BTreeMap<i64, u64>,
    /// Rows at most (0: no limit); past it, new names fold into `FOLDED_NAME`.
    max_entries: usize,
    /// Requests (and failures) counted under `FOLDED_NAME` instead of their own name.
    folded: u64,
    /// Open model: every request also has a service time (its response time unless a corrected
    /// one was given), so the service histograms cover the same requests as the response times.
    open_model: bool,
    /// Response times by Locust's OpenTelemetry attributes, when an exporter asked for them.
    outcomes: Option<Box<OutcomeHistograms>>,
}

impl Inner {
    fn new(start_time: f64) -> Self {
        Inner {
            entries: FxHashMap::default(),
            num_entries: 0,
            total: StatsEntry::new_at(AGGREGATED_NAME, "", start_time),
            errors: Vec::new(),
            error_index: HashMap::new(),
            hasher: RandomState::new(),
            recorder: None,
            frozen: false,
            own_delay: Latencies::new(),
            dropped_iterations: 0,
            dropped_per_sec: BTreeMap::new(),
            max_entries: DEFAULT_MAX_ENTRIES,
            folded: 0,
            open_model: false,
            outcomes: None,
        }
    }

    /// The name (method, name) is counted under: its own, or `FOLDED_NAME` when it would be a
    /// new row past `max_entries`. Costs a lookup only once the table is full.
    fn row_name<'a>(&mut self, method: &str, name: &'a str) -> &'a str {
        if self.max_entries == 0 || self.num_entries < self.max_entries || name == FOLDED_NAME {
            return name;
        }
        if self
            .entries
            .get(name)
            .is_some_and(|m| m.contains_key(method))
        {
            return name;
        }
        self.folded += 1;
        FOLDED_NAME
    }

    /// Runs `f` on the entry for (method, name), created with `start_time` if missing. A hit
    /// costs one lookup per level with borrowed keys. It takes a closure rather than returning
    /// the reference because returning a borrow out of either the hit or the insert branch is
    /// rejected by today's borrow checker.
    fn with_entry<R>(
        &mut self,
        method: &str,
        name: &str,
        start_time: f64,
        f: impl FnOnce(&mut StatsEntry) -> R,
    ) -> R {
        let by_method = match self.entries.get_mut(name) {
            Some(by_method) => by_method,
            None => self.entries.entry(name.to_owned()).or_default(),
        };
        if let Some(entry) = by_method.get_mut(method) {
            return f(entry);
        }
        self.num_entries += 1;
        let entry = by_method
            .entry(method.to_owned())
            .or_insert_with(|| StatsEntry::new_at(name, method, start_time));
        f(entry)
    }

    fn add_error(&mut self, method: &str, name: &str, error: &str, n: u64, first: f64, last: f64) {
        let hash = self.hasher.hash_one((method, name, error));
        let slot = self.error_index.entry(hash).or_default();
        let errors = &mut self.errors;
        let found = slot.iter().copied().find(|&i| {
            let e = &errors[i];
            e.method == method && e.name == name && e.error == error
        });
        match found {
            Some(i) => {
                let e = &mut errors[i];
                e.occurrences += n;
                e.first_seen = e.first_seen.min(first);
                e.last_seen = e.last_seen.max(last);
            }
            None => {
                slot.push(errors.len());
                errors.push(ErrorEntry {
                    method: method.to_owned(),
                    name: name.to_owned(),
                    error: error.to_owned(),
                    occurrences: n,
                    first_seen: first,
                    last_seen: last,
                });
            }
        }
    }

    fn clear_run_counters(&mut self) {
        self.folded = 0;
        self.own_delay.reset();
        self.dropped_iterations = 0;
        self.dropped_per_sec.clear();
    }

    fn clear_errors(&mut self) {
        self.errors.clear();
        self.error_index.clear();
    }

    fn snapshot(&self) -> StatsSnapshot {
        let mut entries: Vec<StatsEntry> = self
            .entries
            .values()
            .flat_map(|by_method| by_method.values().cloned())
            .collect();
        entries.sort_by(|a, b| (&a.name, &a.method).cmp(&(&b.name, &b.method)));
        StatsSnapshot {
            entries,
            total: self.total.clone(),
            errors: self.errors.clone(),
            start_time: self.total.start_time,
            own_delay: self.own_delay.clone(),
            dropped_iterations: self.dropped_iterations,
            dropped_per_sec: self.dropped_per_sec.clone(),
        }
    }
}

/// One finished request as the statistics count it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RequestRecord<'a> {
    pub method: &'a str,
    pub name: &'a str,
    /// None for a request logged without a time (Locust allows it): counted, never timed.
    pub response_time_ms: Option<f64>,
    pub content_length: u64,
    /// The failure's text (Locust groups failures by it); None when the request succeeded.
    pub error: Option<&'a str>,
    /// The HTTP status, 0 when there was none; only the samples keep it.
    pub status: u16,
    /// In the open model, where `response_time_ms` counts from the iteration's scheduled start: the
    /// uncorrected service time (ms), kept beside it.
    pub service_ms: Option<f64>,
    /// horde's own delay for this request (µs), when already known (see `record_own_delay`).
    pub own_delay_us: Option<u64>,
}

/// All request statistics of a run. `Send + Sync`: share it as `Arc<RequestStats>` and log
/// from any thread; each call holds the lock only for a few counter updates.
pub struct RequestStats {
    inner: Mutex<Inner>,
}

impl Default for RequestStats {
    fn default() -> Self {
        Self::new()
    }
}

impl RequestStats {
    /// Empty statistics starting now.
    pub fn new() -> Self {
        Self::new_at(now_epoch_secs())
    }

    /// Empty statistics with the given start_time (epoch seconds), for tests and replays.
    pub fn new_at(start_time: f64) -> Self {
        RequestStats {
            inner: Mutex::new(Inner::new(start_time)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        lock(&self.inner)
    }

    /// Logs one request (and, when error is Some, one failure into the entry, the total and
    /// the error table).
    pub fn log(
        &self,
        method: &str,
        name: &str,
        response_time_ms: Option<f64>,
        content_length: u64,
        error: Option<&str>,
    ) {
        // Read the clock before taking the lock to keep the critical section short.
        let now = now_epoch_secs();
        self.log_at(method, name, response_time_ms, content_length, error, now);
    }

    /// `log` with an explicit time (epoch seconds), for tests and replays.
    pub fn log_at(
        &self,
        method: &str,
        name: &str,
        response_time_ms: Option<f64>,
        content_length: u64,
        error: Option<&str>,
        now: f64,
    ) {
        self.record(
            &RequestRecord {
                method,
                name,
                response_time_ms,
                content_length,
                error,
                status: 0,
                service_ms: None,
                own_delay_us: None,
            },
            now,
        );
    }

    /// Counts one finished request at `now` (epoch seconds): in its entry and the total, and
    /// as a failure in both and in the error table when it failed. Returns the request's index
    /// among the samples when they are being kept (see `record_own_delay`).
    pub fn record(&self, r: &RequestRecord<'_>, now: f64) -> Option<u64> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        if inner.frozen {
            return None;
        }
        let name = inner.row_name(r.method, r.name);
        let service_ms = match r.service_ms {
            None if inner.open_model => r.response_time_ms,
            given => given,
        };
        inner.total.log(r.response_time_ms, r.content_length, now);
        inner.with_entry(r.method, name, now, |entry| {
            entry.log(r.response_time_ms, r.content_length, now);
            if r.error.is_some() {
                entry.log_failure(now);
            }
            if let Some(service) = service_ms {
                entry.log_service_time(service);
            }
        });
        if let Some(service) = service_ms {
            inner.total.log_service_time(service);
        }
        if let Some(error) = r.error {
            inner.total.log_failure(now);
            inner.add_error(r.method, name, error, 1, now, now);
        }
        if let Some(us) = r.own_delay_us {
            inner.own_delay.record(us.clamp(1, MAX_RECORDABLE_US));
        }
        if let (Some(outcomes), Some(rt)) = (inner.outcomes.as_mut(), r.response_time_ms) {
            outcomes.record(r.name, r.error, rt);
        }
        // Requests without a response time are counted but have no latency to sample.
        match (inner.recorder.as_mut(), r.response_time_ms) {
            (Some(recorder), Some(rt)) if name == r.name => recorder.push(r, rt, now),
            (Some(recorder), Some(rt)) => recorder.push(&RequestRecord { name, ..*r }, rt, now),
            _ => None,
        }
    }

    /// Counts horde's own delay for one request (µs), and writes it into that request's sample
    /// when `sample` (from `record`) is still among those kept.
    pub fn record_own_delay(&self, us: u64, sample: Option<u64>) {
        let mut inner = self.lock();
        if inner.frozen {
            return;
        }
        inner.own_delay.record(us.clamp(1, MAX_RECORDABLE_US));
        if let (Some(recorder), Some(index)) = (inner.recorder.as_mut(), sample) {
            recorder.set_own_delay(index, us);
        }
    }

    /// Counts `n` arrivals of the open model dropped at `now` (epoch seconds): no user was free
    /// and the pool was at its maximum.
    pub fn record_dropped_iterations(&self, n: u64, now: f64) {
        let mut inner = self.lock();
        if inner.frozen || n == 0 {
            return;
        }
        inner.dropped_iterations += n;
        bump_second(&mut inner.dropped_per_sec, epoch_second(now), n);
    }

    /// Locust's `log_error` on its own: one failure in the entry, the total and the error
    /// table, without a request.
    pub fn log_error_only(&self, method: &str, name: &str, error: &str) {
        let now = now_epoch_secs();
        self.log_error_only_at(method, name, error, now);
    }

    /// `log_error_only` with an explicit time (epoch seconds).
    pub fn log_error_only_at(&self, method: &str, name: &str, error: &str, now: f64) {
        let mut guard = self.lock();
        let inner = &mut *guard;
        if inner.frozen {
            return;
        }
        let name = inner.row_name(method, name);
        inner.with_entry(method, name, now, |entry| entry.log_failure(now));
        inner.total.log_failure(now);
        inner.add_error(method, name, error, 1, now, now);
    }

    /// Deep copy of every entry, the total and the error table.
    pub fn snapshot(&self) -> StatsSnapshot {
        self.lock().snapshot()
    }

    /// A snapshot of the total alone (no entries, no errors): what the once-a-second sampling of
    /// the current percentiles needs, without copying every entry's histogram.
    pub fn snapshot_total(&self) -> StatsSnapshot {
        let inner = self.lock();
        StatsSnapshot {
            entries: Vec::new(),
            total: inner.total.clone(),
            errors: Vec::new(),
            start_time: inner.total.start_time,
            own_delay: Latencies::new(),
            dropped_iterations: inner.dropped_iterations,
            dropped_per_sec: BTreeMap::new(),
        }
    }

    /// Locust's `reset_all`: every entry and the total zeroed (entries kept), errors cleared.
    pub fn reset_all(&self) {
        let now = now_epoch_secs();
        let mut inner = self.lock();
        inner.total.reset(now);
        for by_method in inner.entries.values_mut() {
            for entry in by_method.values_mut() {
                entry.reset(now);
            }
        }
        inner.clear_errors();
        inner.clear_run_counters();
    }

    /// Locust's `clear_all`: entries removed, total reset, errors cleared.
    pub fn clear_all(&self) {
        let now = now_epoch_secs();
        let mut inner = self.lock();
        inner.frozen = false;
        inner.entries.clear();
        inner.num_entries = 0;
        inner.total.reset(now);
        inner.clear_errors();
        inner.clear_run_counters();
    }

    /// Merges an entry from elsewhere (a worker's report) into the matching entry and into the
    /// total. When the sender's own total is merged with `merge_total`, use `merge_entry_only`
    /// for its entries instead so nothing is counted twice.
    pub fn merge_entry(&self, entry: &StatsEntry) {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let name = inner.row_name(&entry.method, &entry.name);
        inner.with_entry(&entry.method, name, entry.start_time, |e| e.merge(entry));
        inner.total.merge(entry);
    }

    /// Merges an entry into the matching entry only (Locust's master does this for each entry
    /// of a worker report, then extends the total with the report's own total).
    pub fn merge_entry_only(&self, entry: &StatsEntry) {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let name = inner.row_name(&entry.method, &entry.name);
        inner.with_entry(&entry.method, name, entry.start_time, |e| e.merge(entry));
    }

    /// Merges a report's total into the total.
    pub fn merge_total(&self, total: &StatsEntry) {
        self.lock().total.merge(total);
    }

    /// Adds error rows from elsewhere: occurrences summed per (method, name, error), first and
    /// last seen widened.
    pub fn merge_errors(&self, errors: &[ErrorEntry]) {
        let mut inner = self.lock();
        for e in errors {
            let name = inner.row_name(&e.method, &e.name);
            inner.add_error(
                &e.method,
                name,
                &e.error,
                e.occurrences,
                e.first_seen,
                e.last_seen,
            );
        }
    }

    /// Merges a worker's stats report as Locust's master does: each entry into its entry, the
    /// report's own total into the total, and the errors.
    pub fn merge_report(&self, report: &crate::locust::WorkerReport) {
        let errors: Vec<ErrorEntry> = report.errors.values().map(|e| e.to_entry()).collect();
        let mut guard = self.lock();
        let inner = &mut *guard;
        if inner.frozen {
            return;
        }
        // Straight into the entries: no entry or histogram built per report (at a thousand
        // workers that was most of the master's time).
        for d in &report.stats {
            let name = inner.row_name(&d.method, &d.name);
            inner.with_entry(&d.method, name, d.start_time, |e| d.merge_into(e));
        }
        report.stats_total.merge_into(&mut inner.total);
        for e in &errors {
            let name = inner.row_name(&e.method, &e.name);
            inner.add_error(
                &e.method,
                name,
                &e.error,
                e.occurrences,
                e.first_seen,
                e.last_seen,
            );
        }
        if let Some(flat) = &report.horde_own_delay {
            for pair in flat.chunks_exact(2) {
                inner
                    .own_delay
                    .record_n(pair[0].clamp(1, MAX_RECORDABLE_US), pair[1]);
            }
        }
    }

    /// Stops counting: requests logged from now on are ignored until `clear_all` (the start of
    /// the next run). For the end of a run whose stopped users may still have requests in
    /// flight.
    pub fn freeze(&self) {
        self.lock().frozen = true;
    }

    /// Starts keeping every request as a sample (see `samples.rs`), at most `cap` of them;
    /// samples already kept stay. Resets and clears of the statistics leave samples alone.
    pub fn record_samples(&self, cap: usize) {
        let mut inner = self.lock();
        match inner.recorder.as_mut() {
            Some(recorder) => recorder.set_cap(cap),
            None => inner.recorder = Some(Recorder::new(cap, now_epoch_secs())),
        }
    }

    /// (samples kept, samples dropped at the cap) so far.
    pub fn samples_len(&self) -> (usize, u64) {
        match self.lock().recorder.as_ref() {
            Some(r) => (r.len(), r.dropped()),
            None => (0, 0),
        }
    }

    /// Takes the samples kept so far (recording goes on); None when recording is off.
    pub fn take_samples(&self) -> Option<Samples> {
        self.lock().recorder.as_mut().map(Recorder::take)
    }

    /// Starts keeping response times by Locust's OpenTelemetry attributes (see `outcomes.rs`);
    /// they survive resets and clears of the figures.
    pub fn track_outcomes(&self) {
        self.lock().outcomes.get_or_insert_with(Box::default);
    }

    /// The response times by OpenTelemetry attributes since the previous call (empty when not
    /// tracked), which are then zeroed.
    pub fn take_outcomes(&self) -> Vec<OutcomeSeries> {
        self.lock()
            .outcomes
            .as_mut()
            .map(|o| o.take())
            .unwrap_or_default()
    }

    /// Number of (method, name) entries, the total not included.
    pub fn num_entries(&self) -> usize {
        self.lock().num_entries
    }

    /// Keeps at most `max` rows (0: no limit); requests with further names are counted under
    /// `FOLDED_NAME`, one row per method. Rows already there stay.
    pub fn set_max_entries(&self, max: usize) {
        self.lock().max_entries = max;
    }

    /// Marks the run as in the open model (see `Inner::open_model`).
    pub fn set_open_model(&self, open: bool) {
        self.lock().open_model = open;
    }

    /// The row limit (see `set_max_entries`).
    pub fn max_entries(&self) -> usize {
        self.lock().max_entries
    }

    /// Requests and failures counted under `FOLDED_NAME` instead of their own name so far.
    pub fn folded(&self) -> u64 {
        self.lock().folded
    }

    /// What a worker reports: the data since the previous call, then zeroed in the same
    /// critical section so no request falls between report and reset. Like Locust's
    /// `serialize_stats`, entries without requests or failures are left out; entries are kept
    /// (reset), errors are taken.
    pub fn take_deltas(&self) -> StatsSnapshot {
        let now = now_epoch_secs();
        let mut guard = self.lock();
        let inner = &mut *guard;
        let mut entries = Vec::new();
        for by_method in inner.entries.values_mut() {
            for entry in by_method.values_mut() {
                if entry.num_requests > 0 || entry.num_failures > 0 {
                    // Clone then reset (not swap for a fresh entry) so the live histogram
                    // keeps its grown allocation and the hot path does not resize again.
                    entries.push(entry.clone());
                }
                entry.reset(now);
            }
        }
        entries.sort_by(|a, b| (&a.name, &a.method).cmp(&(&b.name, &b.method)));
        let total = inner.total.clone();
        inner.total.reset(now);
        let errors = std::mem::take(&mut inner.errors);
        inner.error_index.clear();
        let own_delay = inner.own_delay.clone();
        let dropped_per_sec = std::mem::take(&mut inner.dropped_per_sec);
        let dropped_iterations = std::mem::take(&mut inner.dropped_iterations);
        inner.own_delay.reset();
        StatsSnapshot {
            entries,
            start_time: total.start_time,
            total,
            errors,
            own_delay,
            dropped_iterations,
            dropped_per_sec,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    const T0: f64 = 1_700_000_000.0;

    fn find<'a>(snap: &'a StatsSnapshot, method: &str, name: &str) -> &'a StatsEntry {
        snap.entries
            .iter()
            .find(|e| e.method == method && e.name == name)
            .expect("entry exists")
    }

    fn assert_close(actual: f64, expected: f64, rel: f64) {
        let tol = expected.abs() * rel;
        assert!(
            (actual - expected).abs() <= tol,
            "{actual} not within {rel} of {expected}"
        );
    }

    #[test]
    fn outcomes_are_kept_only_when_tracked_and_survive_resets() {
        let stats = RequestStats::new_at(T0);
        stats.log_at("GET", "/a", Some(3.0), 0, None, T0);
        assert!(stats.take_outcomes().is_empty());
        stats.track_outcomes();
        stats.log_at("GET", "/a", Some(3.0), 0, None, T0);
        stats.log_at("POST", "/a", Some(5.0), 0, Some("HTTPError('x')"), T0);
        // Untimed requests have no duration to record, as in Locust.
        stats.log_at("GET", "/a", None, 0, None, T0);
        stats.reset_all();
        let taken = stats.take_outcomes();
        let summary: Vec<_> = taken
            .iter()
            .map(|s| (s.name.as_str(), s.error_type.as_deref(), s.histogram.len()))
            .collect();
        assert_eq!(summary, vec![("/a", None, 1), ("/a", Some("HTTPError"), 1)]);
    }

    #[test]
    fn frozen_stats_ignore_late_requests_until_cleared() {
        let stats = RequestStats::new_at(1000.0);
        stats.record_samples(10);
        stats.record(
            &RequestRecord {
                method: "GET",
                name: "/a",
                response_time_ms: Some(5.0),
                content_length: 10,
                error: None,
                status: 200,
                service_ms: None,
                own_delay_us: None,
            },
            1000.5,
        );
        stats.freeze();
        stats.record(
            &RequestRecord {
                method: "GET",
                name: "/a",
                response_time_ms: Some(5.0),
                content_length: 10,
                error: Some("late"),
                status: 200,
                service_ms: None,
                own_delay_us: None,
            },
            1000.6,
        );
        stats.log_error_only("GET", "/a", "late");
        let snap = stats.snapshot();
        assert_eq!((snap.total.num_requests, snap.total.num_failures), (1, 0));
        assert_eq!(stats.samples_len(), (1, 0));
        stats.clear_all();
        stats.record(
            &RequestRecord {
                method: "GET",
                name: "/a",
                response_time_ms: Some(5.0),
                content_length: 10,
                error: None,
                status: 200,
                service_ms: None,
                own_delay_us: None,
            },
            1001.0,
        );
        assert_eq!(stats.snapshot().total.num_requests, 1);
    }

    #[test]
    fn samples_follow_logged_requests_only_when_asked() {
        let stats = RequestStats::new_at(1000.0);
        stats.record(
            &RequestRecord {
                method: "GET",
                name: "/a",
                response_time_ms: Some(5.0),
                content_length: 10,
                error: None,
                status: 200,
                service_ms: None,
                own_delay_us: None,
            },
            1000.5,
        );
        assert!(stats.take_samples().is_none());
        stats.record_samples(3);
        stats.record(
            &RequestRecord {
                method: "GET",
                name: "/a",
                response_time_ms: Some(5.0),
                content_length: 10,
                error: None,
                status: 200,
                service_ms: None,
                own_delay_us: None,
            },
            1001.0,
        );
        stats.record(
            &RequestRecord {
                method: "GET",
                name: "/b",
                response_time_ms: Some(1.0),
                content_length: 0,
                error: Some("boom"),
                status: 500,
                service_ms: None,
                own_delay_us: None,
            },
            1001.1,
        );
        stats.record(
            &RequestRecord {
                method: "GET",
                name: "/b",
                response_time_ms: None,
                content_length: 0,
                error: None,
                status: 0,
                service_ms: None,
                own_delay_us: None,
            },
            1001.2,
        );
        stats.log_error_only("GET", "/b", "no request");
        stats.reset_all();
        stats.record(
            &RequestRecord {
                method: "POST",
                name: "/a",
                response_time_ms: Some(2.0),
                content_length: 1,
                error: None,
                status: 201,
                service_ms: None,
                own_delay_us: None,
            },
            1001.3,
        );
        stats.record(
            &RequestRecord {
                method: "POST",
                name: "/a",
                response_time_ms: Some(2.0),
                content_length: 1,
                error: None,
                status: 201,
                service_ms: None,
                own_delay_us: None,
            },
            1001.4,
        );
        assert_eq!(stats.samples_len(), (3, 1));
        let s = stats.take_samples().unwrap();
        assert_eq!(s.latency_us, vec![5000, 1000, 2000]);
        assert_eq!(s.status, vec![200, 500, 201]);
        assert_eq!(s.ok, vec![true, false, true]);
        assert_eq!(
            s.keys[s.key[2] as usize],
            ("POST".to_string(), "/a".to_string())
        );
        assert_eq!(s.dropped, 1);
        assert_eq!(stats.samples_len(), (0, 0));
    }

    #[test]
    fn counts_and_failures_per_entry_and_total() {
        let stats = RequestStats::new_at(T0);
        stats.log_at("GET", "/", Some(10.0), 100, None, T0 + 0.1);
        stats.log_at("GET", "/", Some(30.0), 300, Some("boom"), T0 + 0.2);
        stats.log_at("POST", "/", Some(20.0), 0, None, T0 + 1.5);
        stats.log_at("GET", "/a", Some(5.0), 50, Some("boom"), T0 + 2.0);
        let snap = stats.snapshot();
        assert_eq!(stats.num_entries(), 3);
        assert_eq!(snap.entries.len(), 3);
        // Sorted by (name, method).
        let keys: Vec<_> = snap
            .entries
            .iter()
            .map(|e| (e.name.as_str(), e.method.as_str()))
            .collect();
        assert_eq!(keys, [("/", "GET"), ("/", "POST"), ("/a", "GET")]);

        let get = find(&snap, "GET", "/");
        assert_eq!(get.num_requests, 2);
        assert_eq!(get.num_failures, 1);
        assert_eq!(get.total_content_length, 400);
        assert_eq!(get.min_response_time, Some(10.0));
        assert_eq!(get.max_response_time, 30.0);
        assert_eq!(get.avg_response_time(), 20.0);
        assert_eq!(get.fail_ratio(), 0.5);
        assert_eq!(get.avg_content_length(), 200.0);
        assert_eq!(get.num_reqs_per_sec, BTreeMap::from([(T0 as i64, 2)]));
        assert_eq!(get.num_fail_per_sec, BTreeMap::from([(T0 as i64, 1)]));
        assert_eq!(get.start_time, T0 + 0.1);
        assert_eq!(get.last_request_timestamp, Some(T0 + 0.2));

        let t = &snap.total;
        assert_eq!((t.name.as_str(), t.method.as_str()), ("Aggregated", ""));
        assert_eq!(t.num_requests, 4);
        assert_eq!(t.num_failures, 2);
        assert_eq!(t.total_content_length, 450);
        assert_eq!(t.min_response_time, Some(5.0));
        assert_eq!(t.max_response_time, 30.0);
        assert_eq!(t.total_response_time, 65.0);
        assert_eq!(t.avg_response_time(), 16.25);
        assert_eq!(t.start_time, T0);
        assert_eq!(snap.start_time, T0);
        assert_eq!(t.last_request_timestamp, Some(T0 + 2.0));
        assert_eq!(
            t.num_reqs_per_sec,
            BTreeMap::from([(T0 as i64, 2), (T0 as i64 + 1, 1), (T0 as i64 + 2, 1)])
        );
        assert_eq!(
            t.num_fail_per_sec,
            BTreeMap::from([(T0 as i64, 1), (T0 as i64 + 2, 1)])
        );
    }

    #[test]
    fn empty_entry_reports_zeros() {
        let e = StatsEntry::new_at("x", "GET", T0);
        assert_eq!(e.avg_response_time(), 0.0);
        assert_eq!(e.median_response_time(), 0.0);
        assert_eq!(e.get_response_time_percentile(0.99), 0.0);
        assert_eq!(e.fail_ratio(), 0.0);
        assert_eq!(e.total_rps(), 0.0);
        assert_eq!(e.current_rps(None), 0.0);
        assert!(e.to_locust_response_times().is_empty());
    }

    #[test]
    fn percentiles_match_exact_values_within_hdr_precision() {
        let stats = RequestStats::new_at(T0);
        // Shuffled order so nothing depends on arrival order.
        for i in 0..1000u64 {
            let ms = (i * 337) % 1000 + 1;
            stats.log_at("GET", "/p", Some(ms as f64), 0, None, T0 + 1.0);
        }
        let snap = stats.snapshot();
        let e = find(&snap, "GET", "/p");
        assert_close(e.median_response_time(), 500.0, 0.001);
        assert_close(e.get_response_time_percentile(0.5), 500.0, 0.001);
        assert_close(e.get_response_time_percentile(0.9), 900.0, 0.001);
        assert_close(e.get_response_time_percentile(0.99), 990.0, 0.001);
        assert_close(e.get_response_time_percentile(0.999), 999.0, 0.001);
        assert_eq!(e.get_response_time_percentile(1.0), 1000.0);
        assert_eq!(e.get_response_time_percentile(0.0), 1.0);
        assert_eq!(e.min_response_time, Some(1.0));
        assert_eq!(e.max_response_time, 1000.0);
        assert_eq!(e.avg_response_time(), 500.5);
        assert_close(snap.total.get_response_time_percentile(0.99), 990.0, 0.001);
    }

    #[test]
    fn sub_millisecond_times_are_kept() {
        let mut e = StatsEntry::new_at("x", "GET", T0);
        e.log(Some(0.25), 0, T0);
        e.log(Some(0.0), 0, T0);
        assert_eq!(e.get_response_time_percentile(1.0), 0.25);
        assert_eq!(e.min_response_time, Some(0.0));
        // 0 ms is clamped to 1 µs in the histogram, then to the exact min.
        assert_eq!(e.get_response_time_percentile(0.0), 0.001);
        assert_eq!(e.to_locust_response_times(), BTreeMap::from([(0, 2)]));
    }

    #[test]
    fn none_response_times_count_as_requests_only() {
        let stats = RequestStats::new_at(T0);
        stats.log_at("GET", "/n", None, 10, None, T0 + 1.0);
        stats.log_at("GET", "/n", None, 10, Some("err"), T0 + 1.0);
        stats.log_at("GET", "/n", Some(42.0), 10, None, T0 + 1.0);
        let snap = stats.snapshot();
        for e in [find(&snap, "GET", "/n"), &snap.total] {
            assert_eq!(e.num_requests, 3);
            assert_eq!(e.num_none_requests, 2);
            assert_eq!(e.num_failures, 1);
            assert_eq!(e.total_content_length, 30);
            assert_eq!(e.min_response_time, Some(42.0));
            assert_eq!(e.max_response_time, 42.0);
            assert_eq!(e.avg_response_time(), 42.0);
            assert_eq!(e.median_response_time(), 42.0);
            assert_eq!(e.histogram().len(), 1);
            assert_eq!(e.to_locust_response_times(), BTreeMap::from([(42, 1)]));
        }
        let only_none = StatsEntry {
            num_requests: 2,
            num_none_requests: 2,
            ..StatsEntry::new_at("x", "GET", T0)
        };
        assert_eq!(only_none.avg_response_time(), 0.0);
        assert_eq!(only_none.min_response_time, None);
    }

    #[test]
    fn current_rps_follows_locusts_window() {
        let stats = RequestStats::new_at(T0);
        let base = T0 as i64;
        // Per-second request counts for seconds base+0 .. base+10; failures on a few seconds.
        let counts = [5u64, 3, 0, 7, 2, 4, 6, 1, 9, 8, 11];
        for (s, &n) in counts.iter().enumerate() {
            for k in 0..n {
                let err = (k == 0 && s % 3 == 0).then_some("e");
                let t = (base + s as i64) as f64 + 0.1 + k as f64 * 0.05;
                stats.log_at("GET", "/r", Some(1.0), 0, err, t);
            }
        }
        let snap = stats.snapshot();
        let now_ref = snap.now_ref();
        assert_eq!(now_ref, Some(base + 10));
        // range(max(last-12, int(start)), last-2) = base+0 .. base+8 (8 seconds):
        // (5+3+0+7+2+4+6+1) / 8 = 28 / 8.
        let e = find(&snap, "GET", "/r");
        assert_eq!(snap.current_rps(e), 3.5);
        assert_eq!(snap.current_rps(&snap.total), 3.5);
        assert_eq!(e.current_rps(now_ref), 3.5);
        // Failures on seconds 0, 3, 6 (9 is outside the window): 3 / 8.
        assert_eq!(snap.current_fail_per_sec(e), 0.375);
        assert_eq!(e.current_fail_per_sec(now_ref), 0.375);

        // A later reference second slides the window to last-12: base+8 .. base+18 (10
        // seconds), of which base+8..=base+10 hold data: (9+8+11) / 10.
        assert_eq!(e.current_rps_from(Some(base + 20), T0), 2.8);
        // An entry created later windows from its own start unless told otherwise.
        let late = StatsEntry {
            start_time: T0 + 5.5,
            ..e.clone()
        };
        assert_eq!(late.current_rps(Some(base + 10)), (4 + 6 + 1) as f64 / 3.0);
        assert_eq!(late.current_rps_from(Some(base + 10), T0), 3.5);
        // Empty window.
        assert_eq!(e.current_rps(Some(base + 1)), 0.0);
        assert_eq!(e.current_rps(None), 0.0);
    }

    #[test]
    fn total_rps_over_the_span() {
        let stats = RequestStats::new_at(T0);
        for i in 0..20 {
            let err = (i % 4 == 0).then_some("x");
            stats.log_at("GET", "/t", Some(1.0), 0, err, T0 + 2.0 + i as f64 * 0.4);
        }
        let snap = stats.snapshot();
        // Last request at T0 + 9.6; the total started at T0. Epoch-sized floats carry about
        // 1e-7 s of error, hence the loose tolerance.
        assert_close(snap.total.total_rps(), 20.0 / 9.6, 1e-6);
        assert_close(snap.total.total_fail_per_sec(), 5.0 / 9.6, 1e-6);
        let e = find(&snap, "GET", "/t");
        // Locust's figure uses the total's span; the entry's own span starts at T0 + 2.
        assert_close(snap.total_rps(e), 20.0 / 9.6, 1e-6);
        assert_close(snap.total_fail_per_sec(e), 5.0 / 9.6, 1e-6);
        assert_close(e.total_rps(), 20.0 / 7.6, 1e-6);
    }

    fn workload(stats: &RequestStats, part: u64) {
        for i in 0..500u64 {
            let method = if i % 3 == 0 { "POST" } else { "GET" };
            let name = ["/a", "/b", "/c"][((i + part) % 3) as usize];
            let rt = if i % 50 == 7 {
                None
            } else {
                Some(((i * 7919 + part * 13) % 20_000) as f64 / 4.0)
            };
            let err = (i % 11 == part).then(|| format!("error {}", i % 2));
            let t = T0 + (part * 500 + i) as f64 * 0.037;
            stats.log_at(method, name, rt, i % 97, err.as_deref(), t);
        }
    }

    fn assert_same_entry(a: &StatsEntry, b: &StatsEntry) {
        assert_eq!((&a.name, &a.method), (&b.name, &b.method));
        assert_eq!(a.num_requests, b.num_requests);
        assert_eq!(a.num_none_requests, b.num_none_requests);
        assert_eq!(a.num_failures, b.num_failures);
        assert_close(a.total_response_time, b.total_response_time, 1e-12);
        assert_eq!(a.min_response_time, b.min_response_time);
        assert_eq!(a.max_response_time, b.max_response_time);
        assert_eq!(a.total_content_length, b.total_content_length);
        assert_eq!(a.start_time, b.start_time);
        assert_eq!(a.last_request_timestamp, b.last_request_timestamp);
        assert_eq!(a.num_reqs_per_sec, b.num_reqs_per_sec);
        assert_eq!(a.num_fail_per_sec, b.num_fail_per_sec);
        assert_eq!(a.histogram(), b.histogram());
        for p in PERCENTILES_TO_REPORT {
            assert_eq!(
                a.get_response_time_percentile(p),
                b.get_response_time_percentile(p)
            );
        }
        assert_eq!(a.to_locust_response_times(), b.to_locust_response_times());
    }

    #[test]
    fn merging_two_stats_equals_logging_into_one() {
        let (a, b, all) = (
            RequestStats::new_at(T0),
            RequestStats::new_at(T0),
            RequestStats::new_at(T0),
        );
        workload(&a, 0);
        workload(&b, 1);
        workload(&all, 0);
        workload(&all, 1);

        let merged = RequestStats::new_at(T0);
        for part in [a.snapshot(), b.snapshot()] {
            for e in &part.entries {
                merged.merge_entry(e);
            }
            merged.merge_errors(&part.errors);
        }
        let (m, x) = (merged.snapshot(), all.snapshot());
        assert_eq!(m.entries.len(), x.entries.len());
        for (me, xe) in m.entries.iter().zip(&x.entries) {
            assert_same_entry(me, xe);
        }
        assert_same_entry(&m.total, &x.total);
        let sorted = |mut v: Vec<ErrorEntry>| {
            v.sort_by(|p, q| (&p.method, &p.name, &p.error).cmp(&(&q.method, &q.name, &q.error)));
            v
        };
        assert_eq!(sorted(m.errors), sorted(x.errors));

        // Locust's own route: entries alone, then the report's total.
        let locust_way = RequestStats::new_at(T0);
        for part in [a.snapshot(), b.snapshot()] {
            for e in &part.entries {
                locust_way.merge_entry_only(e);
            }
            locust_way.merge_total(&part.total);
        }
        assert_same_entry(&locust_way.snapshot().total, &x.total);
    }

    #[test]
    fn entry_merge_handles_empty_sides() {
        let mut a = StatsEntry::new_at("x", "GET", T0 + 5.0);
        let mut b = StatsEntry::new_at("x", "GET", T0);
        b.log(Some(3.0), 1, T0 + 6.0);
        a.merge(&b);
        assert_eq!(a.min_response_time, Some(3.0));
        assert_eq!(a.last_request_timestamp, Some(T0 + 6.0));
        assert_eq!(a.start_time, T0);
        let before = a.clone();
        a.merge(&StatsEntry::new_at("x", "GET", T0 + 9.0));
        assert_same_entry(&a, &before);
    }

    #[test]
    fn reset_all_keeps_entries_but_zeroes_them() {
        let stats = RequestStats::new_at(T0);
        workload(&stats, 0);
        let before = stats.snapshot();
        assert!(!before.errors.is_empty());
        stats.reset_all();
        let after = stats.snapshot();
        assert_eq!(after.entries.len(), before.entries.len());
        assert_eq!(stats.num_entries(), before.entries.len());
        assert!(after.errors.is_empty());
        assert!(after.start_time > T0);
        for e in after.entries.iter().chain([&after.total]) {
            assert_eq!(e.num_requests, 0);
            assert_eq!(e.num_none_requests, 0);
            assert_eq!(e.num_failures, 0);
            assert_eq!(e.total_response_time, 0.0);
            assert_eq!(e.min_response_time, None);
            assert_eq!(e.max_response_time, 0.0);
            assert_eq!(e.total_content_length, 0);
            assert_eq!(e.last_request_timestamp, None);
            assert!(e.num_reqs_per_sec.is_empty() && e.num_fail_per_sec.is_empty());
            assert!(e.histogram().is_empty());
            assert_eq!(e.start_time, after.start_time);
        }
        // Logging works again afterwards, into the same entries.
        stats.log("GET", "/b", Some(2.0), 0, None);
        assert_eq!(stats.num_entries(), before.entries.len());
        assert_eq!(stats.snapshot().total.num_requests, 1);

        stats.clear_all();
        let cleared = stats.snapshot();
        assert_eq!(stats.num_entries(), 0);
        assert!(cleared.entries.is_empty() && cleared.errors.is_empty());
        assert_eq!(cleared.total.num_requests, 0);
        assert_eq!(cleared.total.name, AGGREGATED_NAME);
    }

    #[test]
    fn error_table_aggregates_by_method_name_and_error() {
        let stats = RequestStats::new_at(T0);
        stats.log_at("GET", "/e", Some(1.0), 0, Some("timeout"), T0 + 1.0);
        stats.log_at("GET", "/e", Some(1.0), 0, Some("refused"), T0 + 2.0);
        stats.log_at("GET", "/e", Some(1.0), 0, Some("timeout"), T0 + 3.0);
        stats.log_at("POST", "/e", Some(1.0), 0, Some("timeout"), T0 + 4.0);
        stats.log_at("GET", "/f", Some(1.0), 0, Some("timeout"), T0 + 5.0);
        stats.log_at("GET", "/e", Some(1.0), 0, Some("timeout"), T0 + 6.0);
        stats.log_error_only_at("GET", "/g", "refused", T0 + 7.0);

        let snap = stats.snapshot();
        let rows: Vec<_> = snap
            .errors
            .iter()
            .map(|e| {
                (
                    e.method.as_str(),
                    e.name.as_str(),
                    e.error.as_str(),
                    e.occurrences,
                    e.first_seen - T0,
                    e.last_seen - T0,
                )
            })
            .collect();
        assert_eq!(
            rows,
            [
                ("GET", "/e", "timeout", 3, 1.0, 6.0),
                ("GET", "/e", "refused", 1, 2.0, 2.0),
                ("POST", "/e", "timeout", 1, 4.0, 4.0),
                ("GET", "/f", "timeout", 1, 5.0, 5.0),
                ("GET", "/g", "refused", 1, 7.0, 7.0),
            ]
        );
        // log_error_only: a failure without a request.
        let g = find(&snap, "GET", "/g");
        assert_eq!((g.num_requests, g.num_failures), (0, 1));
        assert_eq!(g.fail_ratio(), 1.0);
        assert_eq!(snap.total.num_requests, 6);
        assert_eq!(snap.total.num_failures, 7);

        // Merging widens first/last seen and sums occurrences.
        stats.merge_errors(&[ErrorEntry {
            method: "GET".into(),
            name: "/e".into(),
            error: "timeout".into(),
            occurrences: 4,
            first_seen: T0 - 1.0,
            last_seen: T0 + 2.0,
        }]);
        let e = &stats.snapshot().errors[0];
        assert_eq!(
            (e.occurrences, e.first_seen, e.last_seen),
            (7, T0 - 1.0, T0 + 6.0)
        );
    }

    #[test]
    fn concurrent_logging_counts_exactly() {
        let stats = Arc::new(RequestStats::new());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let stats = Arc::clone(&stats);
                std::thread::spawn(move || {
                    for i in 0..10_000u64 {
                        let name = ["/x", "/y"][(i % 2) as usize];
                        let err = (i % 10 == 0).then_some("fail");
                        stats.log("GET", name, Some((i % 100 + t) as f64), 1, err);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("logger thread");
        }
        let snap = stats.snapshot();
        assert_eq!(snap.total.num_requests, 40_000);
        assert_eq!(snap.total.num_failures, 4_000);
        assert_eq!(snap.total.total_content_length, 40_000);
        assert_eq!(snap.total.histogram().len(), 40_000);
        assert_eq!(snap.total.num_reqs_per_sec.values().sum::<u64>(), 40_000);
        for name in ["/x", "/y"] {
            let e = find(&snap, "GET", name);
            assert_eq!(e.num_requests, 20_000);
            assert_eq!(e.num_failures, if name == "/x" { 4_000 } else { 0 });
        }
        assert_eq!(snap.errors.len(), 1);
        assert_eq!(snap.errors[0].occurrences, 4_000);
    }

    #[test]
    fn take_deltas_reports_then_resets() {
        let stats = RequestStats::new_at(T0);
        stats.log_at("GET", "/d", Some(5.0), 0, Some("x"), T0 + 1.0);
        stats.log_at("GET", "/idle", Some(5.0), 0, None, T0 + 1.0);
        let first = stats.take_deltas();
        assert_eq!(first.entries.len(), 2);
        assert_eq!(first.total.num_requests, 2);
        assert_eq!(first.errors.len(), 1);
        assert_eq!(first.start_time, T0);

        stats.log_at("GET", "/d", Some(7.0), 0, Some("x"), T0 + 2.0);
        let second = stats.take_deltas();
        // Only entries with activity since the last report travel.
        assert_eq!(second.entries.len(), 1);
        assert_eq!(second.entries[0].num_requests, 1);
        assert_eq!(second.entries[0].min_response_time, Some(7.0));
        assert_eq!(second.total.num_requests, 1);
        assert_eq!(second.errors[0].occurrences, 1);
        assert_eq!(stats.num_entries(), 2);
        assert_eq!(stats.snapshot().total.num_requests, 0);
    }

    #[test]
    fn locust_bucketing_rounds_half_to_even() {
        let cases = [
            (57.4, 57),
            (145.0, 140),
            (1555.0, 1600),
            (12345.0, 12000),
            (155.0, 160),
            (0.5, 0),
            (1.5, 2),
            (2.5, 2),
            (99.5, 100),
            (99.4, 99),
            (145.3, 150),
            (1450.0, 1400),
            (1550.0, 1600),
            (12500.0, 12000),
            (13500.0, 14000),
            (999.9, 1000),
            (-3.0, 0),
        ];
        for (rt, bucket) in cases {
            assert_eq!(bucket_response_time(rt), bucket, "bucket of {rt}");
        }
    }

    #[test]
    fn histogram_rebuckets_into_locust_keys() {
        let mut e = StatsEntry::new_at("x", "GET", T0);
        for rt in [57.4, 57.2, 145.3, 1555.0, 12345.0, 3.0] {
            e.log(Some(rt), 0, T0);
        }
        e.log(None, 0, T0);
        assert_eq!(
            e.to_locust_response_times(),
            BTreeMap::from([(3, 1), (57, 2), (150, 1), (1600, 1), (12000, 1)])
        );
    }

    #[test]
    fn names_past_the_limit_fold_into_one_row_per_method() {
        let stats = RequestStats::new_at(T0);
        stats.set_max_entries(3);
        for i in 0..5 {
            stats.log_at("GET", &format!("/item/{i}"), Some(1.0), 0, None, T0);
        }
        stats.log_at("POST", "/item/9", Some(2.0), 0, Some("boom"), T0);
        // A name that already has a row keeps counting there.
        stats.log_at("GET", "/item/0", Some(1.0), 0, None, T0);
        let snap = stats.snapshot();
        let rows: Vec<(String, String, u64)> = snap
            .entries
            .iter()
            .map(|e| (e.method.clone(), e.name.clone(), e.num_requests))
            .collect();
        assert_eq!(
            rows,
            vec![
                ("GET".into(), "/item/0".into(), 2),
                ("GET".into(), "/item/1".into(), 1),
                ("GET".into(), "/item/2".into(), 1),
                ("GET".into(), FOLDED_NAME.into(), 2),
                ("POST".into(), FOLDED_NAME.into(), 1),
            ]
        );
        assert_eq!(snap.total.num_requests, 7);
        assert_eq!(stats.folded(), 3);
        assert_eq!(snap.errors.len(), 1);
        assert_eq!(snap.errors[0].name, FOLDED_NAME);
        stats.clear_all();
        assert_eq!(stats.folded(), 0);
        // 0: no limit.
        stats.set_max_entries(0);
        for i in 0..50 {
            stats.log_at("GET", &format!("/{i}"), Some(1.0), 0, None, T0);
        }
        assert_eq!(stats.num_entries(), 50);
    }

    #[test]
    fn rows_of_few_requests_stay_small() {
        // What a locustfile that puts ids into URLs costs per row.
        let stats = RequestStats::new_at(T0);
        for i in 0..1000 {
            stats.log_at(
                "GET",
                &format!("/item/{i}"),
                Some(0.25 + i as f64 / 1000.0),
                0,
                None,
                T0,
            );
        }
        let snap = stats.snapshot();
        let heap: usize = snap
            .entries
            .iter()
            .map(|e| e.histogram().heap_bytes())
            .sum();
        assert!(
            heap / 1000 <= 64,
            "{} bytes of latencies per row",
            heap / 1000
        );
        assert!(matches!(snap.total.histogram(), Latencies::Histogram(_)));
    }

    #[test]
    fn open_model_service_times_cover_every_request() {
        // An iteration's first request comes corrected with its service time; the others are
        // timed as in the closed model and are their own service time.
        let stats = RequestStats::new_at(T0);
        stats.set_open_model(true);
        let first = RequestRecord {
            method: "GET",
            name: "first",
            response_time_ms: Some(30.0),
            content_length: 0,
            error: None,
            status: 200,
            service_ms: Some(10.0),
            own_delay_us: None,
        };
        stats.record(&first, T0);
        stats.log_at("GET", "second", Some(2.0), 0, None, T0);
        let snap = stats.snapshot();
        let service = |e: &StatsEntry| e.service_histogram().map(Latencies::len);
        assert_eq!(service(&snap.total), Some(2));
        assert_eq!(
            snap.entries.iter().map(service).collect::<Vec<_>>(),
            [Some(1), Some(1)]
        );
        // Never above the response times, quantile by quantile.
        let total_service = snap.total.service_histogram().unwrap();
        for q in [0.0, 0.5, 1.0] {
            assert!(
                total_service.value_at_quantile(q) <= snap.total.histogram().value_at_quantile(q)
            );
        }
        // The closed model keeps no service times.
        stats.set_open_model(false);
        stats.clear_all();
        stats.log_at("GET", "second", Some(2.0), 0, None, T0);
        let snap = stats.snapshot();
        assert_eq!(snap.total.service_histogram().map_or(0, Latencies::len), 0);
    }

    #[test]
    fn request_stats_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<RequestStats>();
        check::<StatsSnapshot>();
    }
}

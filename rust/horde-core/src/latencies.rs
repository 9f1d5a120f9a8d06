//! The response times of one stats row: exact values while there are few distinct ones, an
//! HdrHistogram past that.
//!
//! An HdrHistogram at three significant figures costs 16 KB before its first value and grows to
//! about 90 KB for second-long times. Rows that see few requests are common (a locustfile that
//! puts ids into URLs without `name=` makes a row per request), and a few thousand of those
//! would cost hundreds of megabytes; the same rows cost a few dozen bytes each here. Quantiles of
//! the exact values follow the histogram's rule (the first value whose cumulative count reaches
//! `ceil(q * total)`) and are exact rather than within 0.1%.

use hdrhistogram::Histogram;

/// Three significant figures keeps every percentile within 0.1% of the exact value.
const HISTOGRAM_SIGFIG: u8 = 3;

/// Distinct values kept exactly before the row turns into a histogram: 64 (value, count) pairs
/// are 1 KB, against a histogram's 16 KB at the least.
pub const EXACT_LIMIT: usize = 64;

/// Microsecond values with their counts; see the module's description.
#[derive(Clone, Debug)]
pub enum Latencies {
    /// Distinct values ascending, each with its count (never 0).
    Exact(Vec<(u64, u64)>),
    /// Boxed so that a row of few values stays small.
    Histogram(Box<Histogram<u64>>),
}

impl Default for Latencies {
    fn default() -> Self {
        Latencies::Exact(Vec::new())
    }
}

impl PartialEq for Latencies {
    /// The same values with the same counts, whichever form holds them.
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

fn new_histogram() -> Histogram<u64> {
    let mut h = Histogram::<u64>::new(HISTOGRAM_SIGFIG).expect("3 significant figures is valid");
    // Start tiny and grow with the largest value seen, so a row of fast requests stays small.
    h.auto(true);
    h
}

impl Latencies {
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts `n` values of `us` (≥ 1, and small enough for a histogram: callers clamp).
    pub fn record_n(&mut self, us: u64, n: u64) {
        if n == 0 {
            return;
        }
        match self {
            Latencies::Exact(values) => match values.binary_search_by_key(&us, |&(v, _)| v) {
                Ok(i) => values[i].1 += n,
                Err(_) if values.len() >= EXACT_LIMIT => {
                    let mut h = self.to_histogram();
                    // Cannot fail: auto-resize is on and callers clamp the value.
                    let _ = h.record_n(us, n);
                    *self = Latencies::Histogram(Box::new(h));
                }
                Err(i) => values.insert(i, (us, n)),
            },
            Latencies::Histogram(h) => {
                let _ = h.record_n(us, n);
            }
        }
    }

    pub fn record(&mut self, us: u64) {
        self.record_n(us, 1);
    }

    /// How many values were counted.
    pub fn len(&self) -> u64 {
        match self {
            Latencies::Exact(values) => values.iter().map(|&(_, n)| n).sum(),
            Latencies::Histogram(h) => h.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        match self {
            Latencies::Exact(values) => values.is_empty(),
            Latencies::Histogram(h) => h.is_empty(),
        }
    }

    /// The value at quantile `q` (0..=1) by the histogram's rule; 0 when empty. A histogram
    /// answers with its bucket's highest equivalent value, exact values with themselves.
    pub fn value_at_quantile(&self, q: f64) -> u64 {
        match self {
            Latencies::Exact(values) => {
                let total = self.len();
                if total == 0 {
                    return 0;
                }
                let q = if q.is_nan() { 0.0 } else { q.clamp(0.0, 1.0) };
                let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
                let mut seen = 0;
                for &(value, count) in values {
                    seen += count;
                    if seen >= rank {
                        return value;
                    }
                }
                values.last().map_or(0, |&(v, _)| v)
            }
            Latencies::Histogram(h) => h.value_at_quantile(q),
        }
    }

    /// Every recorded value with its count, ascending: a histogram gives each non-empty
    /// bucket's highest value.
    pub fn iter(&self) -> Box<dyn Iterator<Item = (u64, u64)> + '_> {
        match self {
            Latencies::Exact(values) => Box::new(values.iter().copied()),
            Latencies::Histogram(h) => Box::new(
                h.iter_recorded()
                    .map(|v| (v.value_iterated_to(), v.count_at_value())),
            ),
        }
    }

    /// The range of true values a recorded value stands for: itself when exact, its bucket's
    /// edges in a histogram.
    pub fn span(&self, value: u64) -> (u64, u64) {
        match self {
            Latencies::Exact(_) => (value, value),
            Latencies::Histogram(h) => (h.lowest_equivalent(value), h.highest_equivalent(value)),
        }
    }

    /// Adds `other`'s counts into these.
    pub fn add(&mut self, other: &Latencies) {
        match (&mut *self, other) {
            (Latencies::Histogram(h), Latencies::Histogram(o)) => {
                if h.add(o.as_ref()).is_err() {
                    // Only if resizing failed: re-record bucket by bucket so no count is lost.
                    for v in o.iter_recorded() {
                        h.saturating_record_n(v.value_iterated_to(), v.count_at_value());
                    }
                }
            }
            (_, other) => {
                for (value, count) in other.iter() {
                    self.record_n(value, count);
                }
            }
        }
    }

    /// Forgets every value; a histogram keeps its grown allocation for the values to come.
    pub fn reset(&mut self) {
        match self {
            Latencies::Exact(values) => values.clear(),
            Latencies::Histogram(h) => h.reset(),
        }
    }

    /// Bytes on the heap (for tests and measurements of the memory a row costs).
    pub fn heap_bytes(&self) -> usize {
        match self {
            Latencies::Exact(values) => values.capacity() * std::mem::size_of::<(u64, u64)>(),
            // `distinct_values` is the length of the counts array: what a histogram allocates.
            Latencies::Histogram(h) => {
                std::mem::size_of::<Histogram<u64>>()
                    + h.distinct_values() * std::mem::size_of::<u64>()
            }
        }
    }

    fn to_histogram(&self) -> Histogram<u64> {
        let mut h = new_histogram();
        for (value, count) in self.iter() {
            let _ = h.record_n(value, count);
        }
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled(values: &[u64]) -> Latencies {
        let mut l = Latencies::new();
        for &v in values {
            l.record(v);
        }
        l
    }

    #[test]
    fn few_values_stay_exact_and_answer_exactly() {
        let l = filled(&[300, 100, 200, 100]);
        assert!(matches!(l, Latencies::Exact(_)));
        assert_eq!(l.len(), 4);
        assert_eq!(
            l.iter().collect::<Vec<_>>(),
            vec![(100, 2), (200, 1), (300, 1)]
        );
        assert_eq!(l.value_at_quantile(0.0), 100);
        assert_eq!(l.value_at_quantile(0.5), 100);
        assert_eq!(l.value_at_quantile(0.51), 200);
        assert_eq!(l.value_at_quantile(1.0), 300);
        assert_eq!(Latencies::new().value_at_quantile(0.5), 0);
    }

    #[test]
    fn exact_and_histogram_agree_on_quantiles_within_a_bucket() {
        // The same values in both forms: the exact answer lies in the histogram's bucket.
        let values: Vec<u64> = (1..=60).map(|i| i * 997 + 13).collect();
        let exact = filled(&values);
        let mut hist = Histogram::<u64>::new(3).unwrap();
        for &v in &values {
            hist.record(v).unwrap();
        }
        let hist = Latencies::Histogram(Box::new(hist));
        for q in [0.0, 0.1, 0.5, 0.9, 0.99, 1.0] {
            let e = exact.value_at_quantile(q);
            let h = hist.value_at_quantile(q);
            let (lo, hi) = hist.span(h);
            assert!(lo <= e && e <= hi, "q={q}: exact {e} outside [{lo}, {hi}]");
        }
    }

    #[test]
    fn turns_into_a_histogram_past_the_limit_without_losing_counts() {
        let values: Vec<u64> = (0..EXACT_LIMIT as u64 + 10)
            .map(|i| 1000 + i * 50)
            .collect();
        let mut l = filled(&values);
        l.record_n(1000, 5);
        assert!(matches!(l, Latencies::Histogram(_)));
        assert_eq!(l.len(), values.len() as u64 + 5);
        assert_eq!(l.value_at_quantile(0.0), 1000);
        let max = *values.last().unwrap();
        let (lo, hi) = l.span(l.value_at_quantile(1.0));
        assert!(lo <= max && max <= hi);
    }

    #[test]
    fn merging_mixes_forms_and_keeps_every_count() {
        let small = filled(&[5, 7, 7]);
        let big = filled(&(1..=200).collect::<Vec<_>>());
        let mut a = small.clone();
        a.add(&big);
        let mut b = big.clone();
        b.add(&small);
        assert_eq!(a.len(), 203);
        assert_eq!(a, b);
        let mut c = small.clone();
        c.add(&small);
        assert_eq!(c.iter().collect::<Vec<_>>(), vec![(5, 2), (7, 4)]);
    }

    #[test]
    fn a_row_of_one_request_costs_a_few_dozen_bytes() {
        let one = filled(&[1234]);
        assert!(one.heap_bytes() <= 64, "{}", one.heap_bytes());
        let many = filled(&(1..=10_000).map(|i| i * 100).collect::<Vec<_>>());
        assert!(many.heap_bytes() > 16 * 1024);
        let mut reset = many.clone();
        reset.reset();
        assert!(reset.is_empty());
        assert_eq!(reset.value_at_quantile(0.5), 0);
    }
}

//! Response times grouped the way Locust's OpenTelemetry histogram groups them: by request name
//! (the first `MAX_OTEL_REQUEST_NAMES` names seen, later ones under one shared name) and by the
//! failure's exception class. Kept only when asked for (`--otel`) and handed out as deltas, so
//! the exporter records a whole interval's requests at once instead of one call per request.

use rustc_hash::FxHashMap;

use crate::latencies::Latencies;
use crate::locust::{error_type, MAX_OTEL_REQUEST_NAMES, OTEL_TOO_MANY_NAMES};
use crate::stats::ms_to_us;

/// The requests of one (name, error type) since the previous `take`.
#[derive(Clone, Debug)]
pub struct OutcomeSeries {
    /// The request name, or `OTEL_TOO_MANY_NAMES` past the cap.
    pub name: String,
    /// The failure's exception class; None for requests that succeeded.
    pub error_type: Option<String>,
    /// Response times in µs.
    pub histogram: Latencies,
    /// Exact sum, min and max of the response times, ms (the histogram rounds to 0.1%).
    pub sum_ms: f64,
    pub min_ms: f64,
    pub max_ms: f64,
}

impl OutcomeSeries {
    fn new(name: &str, error_type: Option<&str>) -> Self {
        OutcomeSeries {
            name: name.to_owned(),
            error_type: error_type.map(str::to_owned),
            histogram: Latencies::new(),
            sum_ms: 0.0,
            min_ms: f64::INFINITY,
            max_ms: 0.0,
        }
    }

    fn record(&mut self, ms: f64) {
        self.histogram.record(ms_to_us(ms));
        self.sum_ms += ms;
        self.min_ms = self.min_ms.min(ms);
        self.max_ms = self.max_ms.max(ms);
    }

    fn reset(&mut self) {
        self.histogram.reset();
        self.sum_ms = 0.0;
        self.min_ms = f64::INFINITY;
        self.max_ms = 0.0;
    }
}

/// Response times by (name, error type), with Locust's cap on distinct names. Unlike the
/// statistics, resets of the run's figures leave it alone: an exporter's series only grow.
#[derive(Default)]
pub struct OutcomeHistograms {
    /// name (as exported) -> its series, one per error type (few: a Vec beats a second map).
    series: FxHashMap<String, Vec<OutcomeSeries>>,
    /// Distinct real names admitted so far; past the cap new ones go under the shared name.
    admitted: usize,
}

impl OutcomeHistograms {
    /// Counts one timed request; `error` is the failure's text (None if it succeeded).
    pub fn record(&mut self, name: &str, error: Option<&str>, ms: f64) {
        let kind = error.map(error_type);
        let key = if self.series.contains_key(name) {
            name
        } else if self.admitted < MAX_OTEL_REQUEST_NAMES {
            self.admitted += 1;
            name
        } else {
            OTEL_TOO_MANY_NAMES
        };
        let by_type = match self.series.get_mut(key) {
            Some(by_type) => by_type,
            None => self.series.entry(key.to_owned()).or_default(),
        };
        match by_type.iter_mut().find(|s| s.error_type.as_deref() == kind) {
            Some(series) => series.record(ms),
            None => {
                let mut series = OutcomeSeries::new(key, kind);
                series.record(ms);
                by_type.push(series);
            }
        }
    }

    /// The series that had requests since the previous call, which are then zeroed (each keeps
    /// its grown histogram, so the hot path does not resize again).
    pub fn take(&mut self) -> Vec<OutcomeSeries> {
        let mut out = Vec::new();
        for by_type in self.series.values_mut() {
            for series in by_type.iter_mut() {
                if series.histogram.is_empty() {
                    continue;
                }
                out.push(series.clone());
                series.reset();
            }
        }
        out.sort_by(|a, b| (&a.name, &a.error_type).cmp(&(&b.name, &b.error_type)));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_by_name_and_error_type_with_exact_sums() {
        let mut o = OutcomeHistograms::default();
        o.record("/a", None, 2.0);
        o.record("/a", None, 4.0);
        o.record(
            "/a",
            Some("HTTPError('404 Client Error: Not Found for url: /a')"),
            1.0,
        );
        o.record(
            "/b",
            Some("ConnectionRefusedError(111, 'Connection refused')"),
            3.0,
        );
        let taken = o.take();
        let summary: Vec<_> = taken
            .iter()
            .map(|s| {
                (
                    s.name.as_str(),
                    s.error_type.as_deref(),
                    s.histogram.len(),
                    s.sum_ms,
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                ("/a", None, 2, 6.0),
                ("/a", Some("HTTPError"), 1, 1.0),
                ("/b", Some("ConnectionRefusedError"), 1, 3.0),
            ]
        );
        assert_eq!((taken[0].min_ms, taken[0].max_ms), (2.0, 4.0));
        // Deltas: nothing new, nothing taken; then only what came since.
        assert!(o.take().is_empty());
        o.record(
            "/b",
            Some("ConnectionRefusedError(111, 'Connection refused')"),
            5.0,
        );
        let again = o.take();
        assert_eq!(again.len(), 1);
        assert_eq!((again[0].histogram.len(), again[0].min_ms), (1, 5.0));
    }

    #[test]
    fn names_past_locusts_cap_share_one_series() {
        let mut o = OutcomeHistograms::default();
        for i in 0..MAX_OTEL_REQUEST_NAMES + 5 {
            o.record(&format!("/n{i}"), None, 1.0);
        }
        // A name admitted before the cap keeps its own series afterwards.
        o.record("/n0", None, 1.0);
        o.record("/late", Some("Timeout('t')"), 1.0);
        let taken = o.take();
        let shared: Vec<_> = taken
            .iter()
            .filter(|s| s.name == OTEL_TOO_MANY_NAMES)
            .map(|s| (s.error_type.as_deref(), s.histogram.len()))
            .collect();
        assert_eq!(shared, vec![(None, 5), (Some("Timeout"), 1)]);
        let own = taken
            .iter()
            .filter(|s| s.name != OTEL_TOO_MANY_NAMES)
            .count();
        assert_eq!(own, MAX_OTEL_REQUEST_NAMES);
        let n0 = taken.iter().find(|s| s.name == "/n0").unwrap();
        assert_eq!(n0.histogram.len(), 2);
    }
}

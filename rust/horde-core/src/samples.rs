//! Every request of a run as compact columns, for analysis after the run (`horde.run`'s
//! `Result.samples`). Recording is off unless asked for; when on, each logged request costs a
//! few vector pushes under the stats lock, and a cap bounds the memory of long runs.

use std::collections::HashMap;

use crate::stats::RequestRecord;

/// Memory one sample takes in the columns below (8 + 4 + 2 + 4 + 4 + 1 + 4 bytes; 4 more for
/// `service_us` in the open model).
pub const BYTES_PER_SAMPLE: usize = 27;

/// One request per index, in completion order.
#[derive(Debug, Default)]
pub struct Samples {
    /// Epoch seconds that `start_us` counts from.
    pub origin: f64,
    /// When the request started, in µs after `origin`.
    pub start_us: Vec<u64>,
    /// Response time in µs (saturating at u32::MAX, about 71 minutes).
    pub latency_us: Vec<u32>,
    /// HTTP status, 0 when there was no response (connection error, custom client).
    pub status: Vec<u16>,
    /// Response body length (saturating at u32::MAX).
    pub bytes: Vec<u32>,
    /// Index into `keys`.
    pub key: Vec<u32>,
    /// False when the request counted as a failure.
    pub ok: Vec<bool>,
    /// horde's own delay for the request in µs: from the user's call until it was written, plus
    /// from the last byte until the user ran again (0 when the user never picked up its result).
    pub own_delay_us: Vec<u32>,
    /// Open model only: the uncorrected service time in µs (`latency_us` counts from the
    /// iteration's scheduled start for an iteration's first request; for the others both are
    /// the same). Empty in a closed-model run.
    pub service_us: Vec<u32>,
    /// (method, name) of each key, in first-seen order.
    pub keys: Vec<(String, String)>,
    /// Requests left out because the cap was reached.
    pub dropped: u64,
}

impl Samples {
    pub fn len(&self) -> usize {
        self.key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.key.is_empty()
    }
}

/// Appends samples up to a cap; lives inside the stats' lock.
#[derive(Debug)]
pub(crate) struct Recorder {
    samples: Samples,
    cap: usize,
    /// Samples handed over by `take` so far: a sample's index counts from the run's first one,
    /// so that `set_own_delay` can find it later.
    taken: u64,
    /// name -> method -> key, two levels so a hit needs no owned strings.
    key_index: HashMap<String, HashMap<String, u32>>,
}

impl Recorder {
    pub(crate) fn new(cap: usize, origin: f64) -> Self {
        Recorder {
            taken: 0,
            samples: Samples {
                origin,
                ..Samples::default()
            },
            cap,
            key_index: HashMap::new(),
        }
    }

    fn key(&mut self, method: &str, name: &str) -> u32 {
        if let Some(&k) = self.key_index.get(name).and_then(|m| m.get(method)) {
            return k;
        }
        let k = self.samples.keys.len() as u32;
        self.samples.keys.push((method.to_owned(), name.to_owned()));
        self.key_index
            .entry(name.to_owned())
            .or_default()
            .insert(method.to_owned(), k);
        k
    }

    /// Records a request that completed at `now` (epoch seconds), taking `response_time_ms`;
    /// returns its index (None past the cap).
    pub(crate) fn push(
        &mut self,
        r: &RequestRecord<'_>,
        response_time_ms: f64,
        now: f64,
    ) -> Option<u64> {
        if self.samples.len() >= self.cap {
            self.samples.dropped += 1;
            return None;
        }
        let index = self.taken + self.samples.len() as u64;
        let key = self.key(r.method, r.name);
        let latency_us = (response_time_ms * 1000.0)
            .round()
            .clamp(0.0, u32::MAX as f64) as u64;
        let end_us = ((now - self.samples.origin) * 1e6).round().max(0.0) as u64;
        let s = &mut self.samples;
        s.start_us.push(end_us.saturating_sub(latency_us));
        s.latency_us.push(latency_us as u32);
        s.status.push(r.status);
        s.bytes.push(r.content_length.min(u32::MAX as u64) as u32);
        s.key.push(key);
        s.ok.push(r.error.is_none());
        s.own_delay_us.push(r.own_delay_us.map_or(0, saturate));
        // The service-time column starts with the first open-model sample. A request whose
        // response time is not counted from a scheduled start (any but an iteration's first) has
        // its response time as its service time, as have the samples before the column started.
        match r.service_ms {
            Some(service) => {
                let before = s.key.len() - 1;
                if s.service_us.len() < before {
                    let from = s.service_us.len();
                    s.service_us.extend_from_slice(&s.latency_us[from..before]);
                }
                s.service_us
                    .push(saturate((service * 1000.0).round().max(0.0) as u64));
            }
            None if !s.service_us.is_empty() => s.service_us.push(latency_us as u32),
            None => {}
        }
        Some(index)
    }

    /// Writes horde's own delay into sample `index` (from `push`) if it is still here.
    pub(crate) fn set_own_delay(&mut self, index: u64, us: u64) {
        if let Some(local) = index.checked_sub(self.taken) {
            if let Some(slot) = self.samples.own_delay_us.get_mut(local as usize) {
                *slot = saturate(us);
            }
        }
    }

    pub(crate) fn set_cap(&mut self, cap: usize) {
        self.cap = cap;
    }

    pub(crate) fn len(&self) -> usize {
        self.samples.len()
    }

    pub(crate) fn dropped(&self) -> u64 {
        self.samples.dropped
    }

    /// Hands the columns over and starts empty again with the same origin and keys, so later
    /// samples keep their key numbers.
    pub(crate) fn take(&mut self) -> Samples {
        self.taken += self.samples.len() as u64;
        let fresh = Samples {
            origin: self.samples.origin,
            keys: self.samples.keys.clone(),
            ..Samples::default()
        };
        std::mem::replace(&mut self.samples, fresh)
    }
}

fn saturate(us: u64) -> u32 {
    us.min(u32::MAX as u64) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(
        ms: f64,
        service_ms: Option<f64>,
        own_delay_us: Option<u64>,
    ) -> RequestRecord<'static> {
        RequestRecord {
            method: "GET",
            name: "/",
            response_time_ms: Some(ms),
            content_length: 0,
            error: None,
            status: 200,
            service_ms,
            own_delay_us,
        }
    }

    #[test]
    fn service_column_starts_with_the_open_model_and_keeps_pace() {
        let mut r = Recorder::new(10, 100.0);
        // Closed model first: no service column.
        r.push(&record(2.0, None, Some(5)), 2.0, 100.1);
        // An iteration's first request (corrected 30 ms, served in 3), then its second request.
        r.push(&record(30.0, Some(3.0), None), 30.0, 100.2);
        r.push(&record(4.0, None, Some(7)), 4.0, 100.3);
        r.set_own_delay(1, 9);
        let s = r.take();
        assert_eq!(s.latency_us, vec![2_000, 30_000, 4_000]);
        // Before the column started and for uncorrected requests, the service time is the
        // response time.
        assert_eq!(s.service_us, vec![2_000, 3_000, 4_000]);
        assert_eq!(s.own_delay_us, vec![5, 9, 7]);
    }

    #[test]
    fn records_in_order_with_interned_keys() {
        let mut r = Recorder::new(10, 100.0);
        r.push(
            &RequestRecord {
                method: "GET",
                name: "/a",
                response_time_ms: Some(20.0),
                content_length: 7,
                error: None,
                status: 200,
                service_ms: None,
                own_delay_us: None,
            },
            20.0,
            100.5,
        );
        r.push(
            &RequestRecord {
                method: "POST",
                name: "/a",
                response_time_ms: Some(1.5),
                content_length: 0,
                error: Some("x"),
                status: 500,
                service_ms: None,
                own_delay_us: None,
            },
            1.5,
            100.6,
        );
        r.push(
            &RequestRecord {
                method: "GET",
                name: "/a",
                response_time_ms: Some(0.0004),
                content_length: 3,
                error: None,
                status: 200,
                service_ms: None,
                own_delay_us: None,
            },
            0.0004,
            101.0,
        );
        let s = r.take();
        assert_eq!(
            s.keys,
            vec![("GET".into(), "/a".into()), ("POST".into(), "/a".into())]
        );
        assert_eq!(s.key, vec![0, 1, 0]);
        assert_eq!(s.latency_us, vec![20_000, 1_500, 0]);
        assert_eq!(s.start_us, vec![480_000, 598_500, 1_000_000]);
        assert_eq!(s.status, vec![200, 500, 200]);
        assert_eq!(s.ok, vec![true, false, true]);
        assert_eq!(s.bytes, vec![7, 0, 3]);
        // Taking leaves an empty recorder that keeps numbering keys where it left off.
        r.push(
            &RequestRecord {
                method: "PUT",
                name: "/b",
                response_time_ms: Some(1.0),
                content_length: 0,
                error: None,
                status: 204,
                service_ms: None,
                own_delay_us: None,
            },
            1.0,
            102.0,
        );
        r.push(
            &RequestRecord {
                method: "GET",
                name: "/a",
                response_time_ms: Some(1.0),
                content_length: 0,
                error: None,
                status: 200,
                service_ms: None,
                own_delay_us: None,
            },
            1.0,
            102.0,
        );
        let s = r.take();
        assert_eq!(s.key, vec![2, 0]);
        assert_eq!(s.keys.len(), 3);
    }

    #[test]
    fn cap_counts_what_it_drops() {
        let mut r = Recorder::new(2, 0.0);
        for _ in 0..5 {
            r.push(
                &RequestRecord {
                    method: "GET",
                    name: "/",
                    response_time_ms: Some(1.0),
                    content_length: 0,
                    error: None,
                    status: 200,
                    service_ms: None,
                    own_delay_us: None,
                },
                1.0,
                1.0,
            );
        }
        assert_eq!(r.len(), 2);
        assert_eq!(r.dropped(), 3);
        let s = r.take();
        assert_eq!(s.len(), 2);
        assert_eq!(s.dropped, 3);
    }

    #[test]
    fn saturates_instead_of_wrapping() {
        let mut r = Recorder::new(2, 10.0);
        r.push(
            &RequestRecord {
                method: "GET",
                name: "/",
                response_time_ms: Some(1e12),
                content_length: 1 << 40,
                error: None,
                status: 200,
                service_ms: None,
                own_delay_us: None,
            },
            1e12,
            5.0,
        );
        let s = r.take();
        assert_eq!(s.latency_us, vec![u32::MAX]);
        assert_eq!(s.bytes, vec![u32::MAX]);
        assert_eq!(s.start_us, vec![0]);
    }
}

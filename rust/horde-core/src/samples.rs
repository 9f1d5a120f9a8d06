//! Every request of a run as compact columns, for analysis after the run (`horde.run`'s
//! `Result.samples`). Recording is off unless asked for; when on, each logged request costs a
//! few vector pushes under the stats lock, and a cap bounds the memory of long runs.

use std::collections::HashMap;

use crate::stats::RequestRecord;

/// Memory one sample takes in the columns below (8 + 4 + 2 + 4 + 4 + 1 bytes).
pub const BYTES_PER_SAMPLE: usize = 23;

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
    /// name -> method -> key, two levels so a hit needs no owned strings.
    key_index: HashMap<String, HashMap<String, u32>>,
}

impl Recorder {
    pub(crate) fn new(cap: usize, origin: f64) -> Self {
        Recorder {
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

    /// Records a request that completed at `now` (epoch seconds), taking `response_time_ms`.
    pub(crate) fn push(&mut self, r: &RequestRecord<'_>, response_time_ms: f64, now: f64) {
        if self.samples.len() >= self.cap {
            self.samples.dropped += 1;
            return;
        }
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
        let fresh = Samples {
            origin: self.samples.origin,
            keys: self.samples.keys.clone(),
            ..Samples::default()
        };
        std::mem::replace(&mut self.samples, fresh)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

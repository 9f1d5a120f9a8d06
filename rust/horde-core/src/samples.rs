//! Every request of a run as compact columns, for analysis after the run (`horde.run`'s
//! `Result.samples`). Recording is off unless asked for; when on, each logged request costs a
//! few vector pushes under the stats lock, and a cap bounds the memory of long runs.

use std::collections::HashMap;

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

    /// Records a request that completed at `now` (epoch seconds).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn push(
        &mut self,
        method: &str,
        name: &str,
        now: f64,
        response_time_ms: f64,
        content_length: u64,
        status: u16,
        ok: bool,
    ) {
        if self.samples.len() >= self.cap {
            self.samples.dropped += 1;
            return;
        }
        let key = self.key(method, name);
        let latency_us = (response_time_ms * 1000.0)
            .round()
            .clamp(0.0, u32::MAX as f64) as u64;
        let end_us = ((now - self.samples.origin) * 1e6).round().max(0.0) as u64;
        let s = &mut self.samples;
        s.start_us.push(end_us.saturating_sub(latency_us));
        s.latency_us.push(latency_us as u32);
        s.status.push(status);
        s.bytes.push(content_length.min(u32::MAX as u64) as u32);
        s.key.push(key);
        s.ok.push(ok);
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
        r.push("GET", "/a", 100.5, 20.0, 7, 200, true);
        r.push("POST", "/a", 100.6, 1.5, 0, 500, false);
        r.push("GET", "/a", 101.0, 0.0004, 3, 200, true);
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
        r.push("PUT", "/b", 102.0, 1.0, 0, 204, true);
        r.push("GET", "/a", 102.0, 1.0, 0, 200, true);
        let s = r.take();
        assert_eq!(s.key, vec![2, 0]);
        assert_eq!(s.keys.len(), 3);
    }

    #[test]
    fn cap_counts_what_it_drops() {
        let mut r = Recorder::new(2, 0.0);
        for _ in 0..5 {
            r.push("GET", "/", 1.0, 1.0, 0, 200, true);
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
        r.push("GET", "/", 5.0, 1e12, 1 << 40, 200, true);
        let s = r.take();
        assert_eq!(s.latency_us, vec![u32::MAX]);
        assert_eq!(s.bytes, vec![u32::MAX]);
        assert_eq!(s.start_us, vec![0]);
    }
}

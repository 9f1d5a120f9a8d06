//! A direct reader for workers' `stats` messages, the bulk of what a master decodes: a report with
//! a hundred names every three seconds from each of a thousand workers. serde's derived decoder
//! matches every key through a visitor and validates it as UTF-8 (about 3.5 µs per entry); this
//! walks the msgpack bytes once and compares keys as bytes.
//!
//! It reads the shapes Locust's and horde's workers send. Anything else (keys it does not know,
//! numbers sent as text, a type it does not expect) makes it give up with None, and the caller
//! decodes with serde, which accepts more and says what is wrong.

use std::collections::BTreeMap;

use crate::locust::{EntryDict, ErrorDict, WorkerReport};

struct Reader<'a> {
    rest: &'a [u8],
}

/// A msgpack value's head: what the decoder branches on.
enum Head {
    Nil,
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(usize),
    Array(usize),
    Map(usize),
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.rest.len() < n {
            return None;
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        Some(head)
    }

    fn be(&mut self, n: usize) -> Option<u64> {
        Some(
            self.take(n)?
                .iter()
                .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)),
        )
    }

    fn head(&mut self) -> Option<Head> {
        let m = *self.take(1)?.first()?;
        Some(match m {
            0x00..=0x7f => Head::UInt(u64::from(m)),
            0x80..=0x8f => Head::Map(usize::from(m & 0x0f)),
            0x90..=0x9f => Head::Array(usize::from(m & 0x0f)),
            0xa0..=0xbf => Head::Str(usize::from(m & 0x1f)),
            0xc0 => Head::Nil,
            0xca => Head::Float(f64::from(f32::from_bits(self.be(4)? as u32))),
            0xcb => Head::Float(f64::from_bits(self.be(8)?)),
            0xcc => Head::UInt(self.be(1)?),
            0xcd => Head::UInt(self.be(2)?),
            0xce => Head::UInt(self.be(4)?),
            0xcf => Head::UInt(self.be(8)?),
            0xd0 => Head::Int(i64::from(self.be(1)? as u8 as i8)),
            0xd1 => Head::Int(i64::from(self.be(2)? as u16 as i16)),
            0xd2 => Head::Int(i64::from(self.be(4)? as u32 as i32)),
            0xd3 => Head::Int(self.be(8)? as i64),
            0xd9 => Head::Str(self.be(1)? as usize),
            0xda => Head::Str(self.be(2)? as usize),
            0xdb => Head::Str(self.be(4)? as usize),
            0xdc => Head::Array(self.be(2)? as usize),
            0xdd => Head::Array(self.be(4)? as usize),
            0xde => Head::Map(self.be(2)? as usize),
            0xdf => Head::Map(self.be(4)? as usize),
            0xe0..=0xff => Head::Int(i64::from(m as i8)),
            // Booleans, binaries, extension types (Locust's datetimes): not in a report.
            _ => return None,
        })
    }

    fn str_bytes(&mut self) -> Option<&'a [u8]> {
        match self.head()? {
            Head::Str(n) => self.take(n),
            _ => None,
        }
    }

    fn string(&mut self) -> Option<String> {
        std::str::from_utf8(self.str_bytes()?)
            .ok()
            .map(str::to_owned)
    }

    /// Text, or nil as "" (Locust's method may be None).
    fn text_or_nil(&mut self) -> Option<String> {
        match self.head()? {
            Head::Nil => Some(String::new()),
            Head::Str(n) => std::str::from_utf8(self.take(n)?).ok().map(str::to_owned),
            _ => None,
        }
    }

    fn number(&mut self) -> Option<f64> {
        match self.head()? {
            Head::UInt(v) => Some(v as f64),
            Head::Int(v) => Some(v as f64),
            Head::Float(v) => Some(v),
            _ => None,
        }
    }

    fn number_or_nil(&mut self) -> Option<Option<f64>> {
        match self.head()? {
            Head::Nil => Some(None),
            Head::UInt(v) => Some(Some(v as f64)),
            Head::Int(v) => Some(Some(v as f64)),
            Head::Float(v) => Some(Some(v)),
            _ => None,
        }
    }

    /// A whole number (an integral float too, as Python may send one).
    fn whole(&mut self) -> Option<i64> {
        match self.head()? {
            Head::UInt(v) => i64::try_from(v).ok(),
            Head::Int(v) => Some(v),
            Head::Float(v) if v.is_finite() && v.fract() == 0.0 => Some(v as i64),
            _ => None,
        }
    }

    fn count(&mut self) -> Option<u64> {
        u64::try_from(self.whole()?).ok()
    }

    fn map_len(&mut self) -> Option<usize> {
        match self.head()? {
            Head::Map(n) => Some(n),
            _ => None,
        }
    }

    /// `{whole number: count}`, summing repeated keys as the serde reader does.
    fn count_map<K: TryFrom<i64> + Ord>(&mut self) -> Option<BTreeMap<K, u64>> {
        let n = match self.head()? {
            Head::Map(n) => n,
            Head::Nil => 0,
            _ => return None,
        };
        let mut out = BTreeMap::new();
        for _ in 0..n {
            let key = K::try_from(self.whole()?).ok()?;
            *out.entry(key).or_insert(0) += self.count()?;
        }
        Some(out)
    }

    fn uints(&mut self) -> Option<Option<Vec<u64>>> {
        let n = match self.head()? {
            Head::Nil => return Some(None),
            Head::Array(n) => n,
            _ => return None,
        };
        let mut out = Vec::with_capacity(n.min(self.rest.len()));
        for _ in 0..n {
            out.push(self.count()?);
        }
        Some(Some(out))
    }

    fn entry(&mut self) -> Option<EntryDict> {
        let n = self.map_len()?;
        let (mut name, mut method, mut start_time) = (None, None, None);
        let (mut total_response_time, mut max_response_time) = (None, None);
        let mut e = EntryDict {
            name: String::new(),
            method: String::new(),
            last_request_timestamp: None,
            start_time: 0.0,
            num_requests: 0,
            num_none_requests: 0,
            num_failures: 0,
            total_response_time: 0.0,
            max_response_time: 0.0,
            min_response_time: None,
            total_content_length: 0,
            response_times: BTreeMap::new(),
            num_reqs_per_sec: BTreeMap::new(),
            num_fail_per_sec: BTreeMap::new(),
            hdr_buckets: None,
        };
        for _ in 0..n {
            match self.str_bytes()? {
                b"name" => name = Some(self.string()?),
                b"method" => method = Some(self.text_or_nil()?),
                b"last_request_timestamp" => e.last_request_timestamp = self.number_or_nil()?,
                b"start_time" => start_time = Some(self.number()?),
                b"num_requests" => e.num_requests = self.count()?,
                b"num_none_requests" => e.num_none_requests = self.count()?,
                b"num_failures" => e.num_failures = self.count()?,
                b"total_response_time" => total_response_time = Some(self.number()?),
                b"max_response_time" => max_response_time = Some(self.number()?),
                b"min_response_time" => e.min_response_time = self.number_or_nil()?,
                b"total_content_length" => e.total_content_length = self.count()?,
                b"response_times" => e.response_times = self.count_map()?,
                b"num_reqs_per_sec" => e.num_reqs_per_sec = self.count_map()?,
                b"num_fail_per_sec" => e.num_fail_per_sec = self.count_map()?,
                b"hdr_buckets" => e.hdr_buckets = self.uints()?,
                _ => return None,
            }
        }
        e.name = name?;
        e.method = method?;
        e.start_time = start_time?;
        e.total_response_time = total_response_time?;
        e.max_response_time = max_response_time?;
        Some(e)
    }

    fn error(&mut self) -> Option<ErrorDict> {
        let n = self.map_len()?;
        let (mut name, mut method, mut error) = (None, None, None);
        let mut d = ErrorDict {
            name: String::new(),
            method: String::new(),
            error: String::new(),
            occurrences: 0,
            first_seen: None,
            last_seen: None,
        };
        for _ in 0..n {
            match self.str_bytes()? {
                b"name" => name = Some(self.string()?),
                b"method" => method = Some(self.text_or_nil()?),
                b"error" => error = Some(self.string()?),
                b"occurrences" => d.occurrences = self.count()?,
                b"first_seen" => d.first_seen = self.number_or_nil()?,
                b"last_seen" => d.last_seen = self.number_or_nil()?,
                _ => return None,
            }
        }
        d.name = name?;
        d.method = method?;
        d.error = error?;
        Some(d)
    }

    fn report(&mut self) -> Option<WorkerReport> {
        let n = self.map_len()?;
        let mut stats = Vec::new();
        let mut stats_total = None;
        let mut errors = BTreeMap::new();
        let mut user_classes_count = None;
        let mut horde_own_delay = None;
        for _ in 0..n {
            match self.str_bytes()? {
                b"stats" => {
                    let Head::Array(len) = self.head()? else {
                        return None;
                    };
                    stats.reserve(len.min(self.rest.len()));
                    for _ in 0..len {
                        stats.push(self.entry()?);
                    }
                }
                b"stats_total" => stats_total = Some(self.entry()?),
                b"errors" => {
                    for _ in 0..self.map_len()? {
                        let key = self.string()?;
                        errors.insert(key, self.error()?);
                    }
                }
                b"user_classes_count" => {
                    user_classes_count = match self.head()? {
                        Head::Nil => None,
                        Head::Map(len) => {
                            let mut counts = BTreeMap::new();
                            for _ in 0..len {
                                let class = self.string()?;
                                counts.insert(class, self.whole()?);
                            }
                            Some(counts)
                        }
                        _ => return None,
                    }
                }
                b"user_count" => {
                    self.whole()?;
                }
                b"horde_own_delay" => horde_own_delay = self.uints()?,
                // A locustfile's own keys (report_to_master): serde skips them.
                _ => return None,
            }
        }
        Some(WorkerReport {
            stats,
            stats_total: stats_total?,
            errors,
            user_classes_count,
            horde_own_delay,
        })
    }
}

/// Reads a `stats` message (`[type, data, node_id]`): the worker's id and its report, or None
/// when it is not in the shape workers send (the caller then decodes it with serde).
pub fn read_stats_message(raw: &[u8]) -> Option<(String, WorkerReport)> {
    let mut rd = Reader { rest: raw };
    let Head::Array(3) = rd.head()? else {
        return None;
    };
    if rd.str_bytes()? != b"stats" {
        return None;
    }
    let report = rd.report()?;
    let node_id = rd.string()?;
    rd.rest.is_empty().then_some((node_id, report))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::locust::serde_stats_message;

    /// A report as a Python worker encodes it (msgpack-python: the smallest encoding of each
    /// number), built with rmp_serde's named encoding, which does the same.
    fn sample(hdr: bool) -> Vec<u8> {
        let mut e = crate::stats::StatsEntry::new_at("/a", "GET", 1_700_000_000.5);
        for (i, ms) in [1.0, 2.5, 12.0, 250.0, 4000.0].iter().enumerate() {
            e.num_requests += 1;
            e.total_response_time += ms;
            e.max_response_time = e.max_response_time.max(*ms);
            e.min_response_time = Some(e.min_response_time.map_or(*ms, |m: f64| m.min(*ms)));
            e.record_times(*ms, 1 + i as u64);
        }
        e.num_reqs_per_sec.insert(1_700_000_001, 3);
        e.num_fail_per_sec.insert(1_700_000_001, 1);
        e.last_request_timestamp = Some(1_700_000_001.25);
        let dict = |e: &crate::stats::StatsEntry| {
            if hdr {
                EntryDict::with_histogram(e)
            } else {
                EntryDict::from(e)
            }
        };
        #[derive(serde::Serialize)]
        struct Report {
            stats: Vec<EntryDict>,
            stats_total: EntryDict,
            errors: BTreeMap<String, ErrorDict>,
            user_classes_count: BTreeMap<String, i64>,
            user_count: i64,
        }
        let mut method_null = dict(&e);
        method_null.name = "/b".into();
        let report = Report {
            stats: vec![dict(&e), method_null],
            stats_total: dict(&e),
            errors: BTreeMap::from([(
                "GET./a.boom".to_owned(),
                ErrorDict {
                    name: "/a".into(),
                    method: "GET".into(),
                    error: "boom".into(),
                    occurrences: 2,
                    first_seen: Some(1.5),
                    last_seen: None,
                },
            )]),
            user_classes_count: BTreeMap::from([("U".to_owned(), 3)]),
            user_count: 3,
        };
        rmp_serde::to_vec_named(&("stats", report, "worker-1")).unwrap()
    }

    #[test]
    fn reads_what_serde_reads() {
        for hdr in [false, true] {
            let raw = sample(hdr);
            assert_eq!(
                read_stats_message(&raw),
                Some(serde_stats_message(&raw).unwrap())
            );
        }
    }

    #[test]
    fn gives_up_on_anything_else_and_never_panics() {
        let raw = sample(true);
        // Every prefix, and every single-byte change, either reads as serde reads it or gives up.
        for cut in 0..raw.len() {
            assert_eq!(read_stats_message(&raw[..cut]), None);
        }
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let mut bytes = raw.clone();
            let at = (seed as usize) % bytes.len();
            bytes[at] = (seed >> 32) as u8;
            if let Some(fast) = read_stats_message(&bytes) {
                // Compared as text: a changed byte may make a NaN, which equals nothing.
                let slow = serde_stats_message(&bytes).ok();
                assert_eq!(format!("{:?}", Some(fast)), format!("{slow:?}"));
            }
        }
        // A locustfile's own key at the top: left to serde.
        let extra =
            rmp_serde::to_vec_named(&("stats", BTreeMap::from([("custom", 1)]), "worker-1"))
                .unwrap();
        assert_eq!(read_stats_message(&extra), None);
    }
}

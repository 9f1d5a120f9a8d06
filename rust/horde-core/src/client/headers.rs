//! A response's header fields as they arrived: one shared copy of the head and where each name and
//! value sits in it. Most responses of a load test are asked for a few framing headers at most, so
//! building an `http::HeaderMap` (an allocation per map, a hash per field) for each was wasted.

use bytes::Bytes;

/// Header fields in the order received; names match case-insensitively.
#[derive(Clone, Debug, Default)]
pub struct Headers {
    raw: Bytes,
    /// (name start, name end, value start, value end) in `raw`.
    fields: Vec<(u32, u32, u32, u32)>,
}

impl Headers {
    pub(crate) fn new(raw: Bytes, fields: Vec<(u32, u32, u32, u32)>) -> Headers {
        Headers { raw, fields }
    }

    /// Every field as (name as received, value bytes).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> + '_ {
        self.fields.iter().map(|&(ns, ne, vs, ve)| {
            let name = &self.raw[ns as usize..ne as usize];
            // httparse accepts only token characters in names, which are ASCII.
            (
                std::str::from_utf8(name).unwrap_or(""),
                &self.raw[vs as usize..ve as usize],
            )
        })
    }

    /// The values of every field named `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        // Compared as bytes: the engine looks up several names in every response.
        self.fields
            .iter()
            .filter(move |&&(ns, ne, _, _)| {
                self.raw[ns as usize..ne as usize].eq_ignore_ascii_case(name.as_bytes())
            })
            .map(move |&(_, _, vs, ve)| &self.raw[vs as usize..ve as usize])
    }

    /// The value of the first field named `name`.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|&&(ns, ne, _, _)| {
                self.raw[ns as usize..ne as usize].eq_ignore_ascii_case(name.as_bytes())
            })
            .map(|&(_, _, vs, ve)| &self.raw[vs as usize..ve as usize])
    }

    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    pub fn len(&self) -> usize {
        self.fields.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_ignore_case_and_keep_order() {
        let raw = Bytes::from_static(b"Set-Cookie: a=1\r\nX-Y: z\r\nset-cookie: b=2\r\n");
        let h = Headers::new(
            raw,
            vec![(0, 10, 12, 15), (17, 20, 22, 23), (25, 35, 37, 40)],
        );
        assert_eq!(h.get("x-y"), Some(&b"z"[..]));
        assert_eq!(h.get("X-Missing"), None);
        assert!(h.contains("SET-COOKIE"));
        let cookies: Vec<&[u8]> = h.get_all("set-cookie").collect();
        assert_eq!(cookies, [&b"a=1"[..], &b"b=2"[..]]);
        let names: Vec<&str> = h.iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["Set-Cookie", "X-Y", "set-cookie"]);
        assert_eq!(h.len(), 3);
    }
}

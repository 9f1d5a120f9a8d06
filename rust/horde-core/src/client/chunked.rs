//! The chunked transfer coding (RFC 9112, section 7.1), decoded as bytes arrive. A chunk's data
//! is copied out as it comes, so a declared size is never allocated up front, and each line (a
//! chunk's size with its extensions, a trailer field) is bounded. No I/O here: the connection
//! feeds whatever it has read, and the tests and the fuzzer feed anything at all.

use bytes::BytesMut;

use super::error::Cause;

/// The longest chunk-size line (size and extensions) accepted, as http.client's line limit.
pub(crate) const MAX_LINE: usize = 64 * 1024;
/// The most bytes of trailer fields accepted after the last chunk (the limit of a head).
pub(crate) const MAX_TRAILER: usize = 256 * 1024;

enum State {
    /// Reading a chunk-size line into `line`.
    Size,
    /// Inside a chunk's data, with this many bytes to come.
    Data(u64),
    /// After a chunk's data, which must end with CRLF (`cr`: the CR has come).
    DataEnd {
        cr: bool,
    },
    /// After the last chunk: trailer fields, one line at a time, until an empty line.
    Trailer,
    Done,
}

pub(crate) struct ChunkedDecoder {
    state: State,
    /// The line read so far: a size line in `Size`, the current trailer line in `Trailer`.
    line: Vec<u8>,
    /// The current chunk's declared size (for the error when the connection closes inside it).
    chunk_size: u64,
    trailer_len: usize,
}

impl ChunkedDecoder {
    pub fn new() -> Self {
        ChunkedDecoder {
            state: State::Size,
            line: Vec::new(),
            chunk_size: 0,
            trailer_len: 0,
        }
    }

    /// Decodes from `input`, appending chunk data to `body`. Returns how many bytes of `input`
    /// it used: all of them, unless the body ended inside it (what follows is not the body's).
    pub fn decode(&mut self, input: &[u8], body: &mut BytesMut) -> Result<usize, Cause> {
        let mut at = 0;
        while at < input.len() {
            let rest = &input[at..];
            match self.state {
                State::Size => {
                    let (part, complete) = up_to_line_end(rest);
                    if self.line.len() + part.len() > MAX_LINE {
                        return Err(Cause::ChunkLineTooLong);
                    }
                    self.line.extend_from_slice(part);
                    at += part.len();
                    if complete {
                        let size = chunk_size(&self.line).ok_or_else(|| Cause::BadChunkSize {
                            line: self.line.clone(),
                            overflow: size_overflows(&self.line),
                        })?;
                        self.line.clear();
                        self.chunk_size = size;
                        self.state = if size == 0 {
                            State::Trailer
                        } else {
                            State::Data(size)
                        };
                    }
                }
                State::Data(left) => {
                    // Bounded by what has arrived, whatever the declared size.
                    let n = rest.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    body.extend_from_slice(&rest[..n]);
                    at += n;
                    let left = left - n as u64;
                    self.state = if left == 0 {
                        State::DataEnd { cr: false }
                    } else {
                        State::Data(left)
                    };
                }
                State::DataEnd { cr } => {
                    // A bare LF is taken for CRLF, as in every line of HTTP/1.1.
                    self.state = match (cr, rest[0]) {
                        (false, b'\r') => State::DataEnd { cr: true },
                        (_, b'\n') => State::Size,
                        _ => return Err(Cause::ChunkDataNotTerminated),
                    };
                    at += 1;
                }
                State::Trailer => {
                    // Trailer fields are read past, not kept (requests and Locust drop them too).
                    let (part, complete) = up_to_line_end(rest);
                    self.trailer_len += part.len();
                    if self.trailer_len > MAX_TRAILER {
                        return Err(Cause::HeadTooLarge);
                    }
                    // Only whether the line is empty matters: keep at most its first two bytes.
                    let keep = part.len().min(2usize.saturating_sub(self.line.len()));
                    self.line.extend_from_slice(&part[..keep]);
                    at += part.len();
                    if complete {
                        let empty = matches!(self.line.as_slice(), b"\n" | b"\r\n");
                        self.line.clear();
                        if empty {
                            self.state = State::Done;
                            return Ok(at);
                        }
                    }
                }
                State::Done => return Ok(at),
            }
        }
        Ok(at)
    }

    /// Whether the body is complete.
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// Whether the body's data is all there: the last chunk has come (its trailer fields may not
    /// have). A connection that closes then has delivered the whole body.
    pub fn has_all_data(&self) -> bool {
        matches!(self.state, State::Trailer | State::Done)
    }

    /// Why the body is incomplete when the connection closes now.
    pub fn ended_early(&self) -> Cause {
        match self.state {
            State::Data(left) => Cause::ChunkIncomplete {
                read: self.chunk_size - left,
                more: left,
            },
            _ => Cause::ChunkedEnded,
        }
    }
}

/// The bytes of `input` up to and including the first LF, and whether there was one.
fn up_to_line_end(input: &[u8]) -> (&[u8], bool) {
    match input.iter().position(|&b| b == b'\n') {
        Some(i) => (&input[..=i], true),
        None => (input, false),
    }
}

/// The size on a chunk-size line (with its line end): hexadecimal digits, then optional spaces
/// or tabs and `;extensions`, which are ignored. None if malformed or above 64 bits.
fn chunk_size(line: &[u8]) -> Option<u64> {
    let digits = size_digits(line)?;
    let mut size: u64 = 0;
    for &b in digits {
        let digit = (b as char).to_digit(16)?;
        size = size.checked_mul(16)?.checked_add(u64::from(digit))?;
    }
    Some(size)
}

/// The hexadecimal digits of a chunk-size line, if that is all there is before the extensions.
fn size_digits(line: &[u8]) -> Option<&[u8]> {
    let line = line.strip_suffix(b"\n")?;
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let size = match line.iter().position(|&b| b == b';') {
        Some(i) => &line[..i],
        None => line,
    };
    let end = size
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(0, |i| i + 1);
    let digits = &size[..end];
    (!digits.is_empty() && digits.iter().all(u8::is_ascii_hexdigit)).then_some(digits)
}

/// Whether a malformed size line is malformed only because its size has more than 64 bits.
fn size_overflows(line: &[u8]) -> bool {
    size_digits(line).is_some_and(|digits| {
        let significant = digits.iter().skip_while(|&&b| b == b'0').count();
        significant > 16
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `input` fed in pieces of `step` bytes: the body, the bytes left after it, and the
    /// outcome (Ok(true) when complete).
    fn feed(input: &[u8], step: usize) -> (Vec<u8>, Vec<u8>, Result<bool, Cause>) {
        let mut decoder = ChunkedDecoder::new();
        let mut body = BytesMut::new();
        let mut pending = Vec::new();
        for piece in input.chunks(step) {
            pending.extend_from_slice(piece);
            match decoder.decode(&pending, &mut body) {
                Ok(used) => {
                    pending.drain(..used);
                }
                Err(cause) => return (body.to_vec(), pending, Err(cause)),
            }
            if decoder.is_done() {
                return (body.to_vec(), pending, Ok(true));
            }
        }
        (body.to_vec(), pending, Ok(decoder.is_done()))
    }

    #[test]
    fn whole_or_byte_by_byte_the_same_body() {
        let input = b"5;name=value\r\nhello\r\n6 ; a ; b=\"c\"\r\n world\r\n0\r\nX-Trailer: 1\r\nY: 2\r\n\r\nNEXT";
        for step in [1, 2, 3, 7, input.len()] {
            let (body, left, outcome) = feed(input, step);
            assert_eq!(body, b"hello world", "step {step}");
            assert_eq!(outcome, Ok(true), "step {step}");
            // What follows the body stays for the connection.
            assert!(b"NEXT".starts_with(&left), "step {step}: {left:?}");
        }
    }

    #[test]
    fn sizes_in_either_case_with_leading_zeros_and_bare_lf() {
        let (body, _, outcome) = feed(b"0000A\nabcdefghij\nfF\r\n", 4);
        assert_eq!(outcome, Ok(false));
        assert_eq!(body, b"abcdefghij");
        let (body, _, outcome) = feed(b"1\na\n0\n\n", 1);
        assert_eq!((body.as_slice(), outcome), (&b"a"[..], Ok(true)));
    }

    #[test]
    fn malformed_sizes_are_reported_with_their_line() {
        for (input, line, overflow) in [
            (&b"zz\r\nhello\r\n"[..], &b"zz\r\n"[..], false),
            (b"-5\r\n", b"-5\r\n", false),
            (b" 5\r\n", b" 5\r\n", false),
            (b"0x5\r\n", b"0x5\r\n", false),
            (b";ext\r\n", b";ext\r\n", false),
            (b"\r\n", b"\r\n", false),
            (b"5 5\r\n", b"5 5\r\n", false),
            (b"+5\r\n", b"+5\r\n", false),
            (b"1ffffffffffffffff\r\n", b"1ffffffffffffffff\r\n", true),
            (b"00000000000000000001\r\n", b"", false), // 20 digits but one significant: valid
        ] {
            let (_, _, outcome) = feed(input, 1);
            if line.is_empty() {
                assert_eq!(outcome, Ok(false));
                continue;
            }
            assert_eq!(
                outcome,
                Err(Cause::BadChunkSize {
                    line: line.to_vec(),
                    overflow
                }),
                "{input:?}"
            );
        }
    }

    #[test]
    fn a_huge_declared_size_allocates_only_what_arrives() {
        let mut decoder = ChunkedDecoder::new();
        let mut body = BytesMut::new();
        let used = decoder
            .decode(b"ffffffffffffffff\r\nabc", &mut body)
            .unwrap();
        assert_eq!((used, &body[..]), (21, &b"abc"[..]));
        assert!(body.capacity() < 1024);
        assert_eq!(
            decoder.ended_early(),
            Cause::ChunkIncomplete {
                read: 3,
                more: u64::MAX - 3
            }
        );
    }

    #[test]
    fn where_an_early_end_leaves_the_body() {
        let mut decoder = ChunkedDecoder::new();
        let mut body = BytesMut::new();
        decoder.decode(b"5\r\nhel", &mut body).unwrap();
        assert_eq!(
            decoder.ended_early(),
            Cause::ChunkIncomplete { read: 3, more: 2 }
        );
        decoder.decode(b"lo\r\n", &mut body).unwrap();
        assert_eq!(decoder.ended_early(), Cause::ChunkedEnded);
        assert!(!decoder.has_all_data());
        decoder.decode(b"0\r\nX-T: 1\r\n", &mut body).unwrap();
        assert!(decoder.has_all_data() && !decoder.is_done());
    }

    #[test]
    fn data_must_end_with_a_line_end() {
        let (body, _, outcome) = feed(b"3\r\nhelXY0\r\n\r\n", 1);
        assert_eq!(body, b"hel");
        assert_eq!(outcome, Err(Cause::ChunkDataNotTerminated));
    }

    #[test]
    fn lines_and_trailers_are_bounded() {
        let mut long = b"5;".to_vec();
        long.resize(MAX_LINE + 10, b'a');
        assert_eq!(feed(&long, 4096).2, Err(Cause::ChunkLineTooLong));
        let mut trailer = b"0\r\n".to_vec();
        while trailer.len() < MAX_TRAILER + 100 {
            trailer.extend_from_slice(b"X-Field: value\r\n");
        }
        assert_eq!(feed(&trailer, 4096).2, Err(Cause::HeadTooLarge));
    }

    /// SplitMix64, for the property tests below: fixed seed, so a failing case replays.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// A valid chunked body of random chunks (random extensions, trailers, case, line ends),
    /// and the data it carries.
    fn valid(rng: &mut Rng) -> (Vec<u8>, Vec<u8>) {
        let mut wire = Vec::new();
        let mut data = Vec::new();
        for _ in 0..rng.below(6) {
            let chunk: Vec<u8> = (0..1 + rng.below(40)).map(|_| rng.next() as u8).collect();
            let size = if rng.below(2) == 0 {
                format!("{:x}", chunk.len())
            } else {
                format!("{:04X}", chunk.len())
            };
            wire.extend_from_slice(size.as_bytes());
            if rng.below(3) == 0 {
                wire.extend_from_slice(b" ;name=\"quoted;value\";flag");
            }
            let eol: &[u8] = if rng.below(5) == 0 { b"\n" } else { b"\r\n" };
            wire.extend_from_slice(eol);
            wire.extend_from_slice(&chunk);
            wire.extend_from_slice(eol);
            data.extend_from_slice(&chunk);
        }
        wire.extend_from_slice(b"0\r\n");
        for _ in 0..rng.below(3) {
            wire.extend_from_slice(b"X-Trailer: some value\r\n");
        }
        wire.extend_from_slice(b"\r\n");
        (wire, data)
    }

    #[test]
    fn random_splits_of_valid_bodies_decode_the_same() {
        let mut rng = Rng(7);
        for case in 0..3000 {
            let (wire, data) = valid(&mut rng);
            let step = 1 + rng.below(wire.len());
            let (body, left, outcome) = feed(&wire, step);
            assert_eq!(
                outcome,
                Ok(true),
                "case {case}: {wire:?} in steps of {step}"
            );
            assert_eq!(body, data, "case {case}");
            assert!(left.is_empty(), "case {case}");
        }
    }

    #[test]
    fn mutated_bodies_never_panic_and_stay_bounded() {
        const HUGE: &[&[u8]] = &[b"ffffffffffffffff", b"10000000000000000", b"-1", b"", b"zz"];
        let mut rng = Rng(11);
        for case in 0..20_000 {
            let (mut wire, _) = valid(&mut rng);
            for _ in 0..1 + rng.below(3) {
                let at = rng.below(wire.len());
                match rng.below(6) {
                    0 => wire.truncate(at),
                    1 => wire[at] ^= 1 << rng.below(8),
                    2 => wire.insert(at, rng.next() as u8),
                    3 => {
                        wire.remove(at);
                    }
                    4 => {
                        let huge = HUGE[rng.below(HUGE.len())];
                        wire.splice(at..at, huge.iter().copied());
                    }
                    _ => {
                        if let Some(i) = (at..wire.len()).find(|&i| wire[i] == b'\r') {
                            wire.remove(i);
                        }
                    }
                }
                if wire.is_empty() {
                    break;
                }
            }
            let step = 1 + rng.below(wire.len().max(1));
            let mut decoder = ChunkedDecoder::new();
            let mut body = BytesMut::new();
            let mut pending = Vec::new();
            for piece in wire.chunks(step) {
                pending.extend_from_slice(piece);
                match decoder.decode(&pending, &mut body) {
                    Ok(used) => {
                        assert!(used <= pending.len(), "case {case}");
                        pending.drain(..used);
                    }
                    Err(_) => break,
                }
                // Memory follows what arrived, never what a size line claims.
                assert!(body.len() <= wire.len(), "case {case}");
                assert!(decoder.line.len() <= MAX_LINE, "case {case}");
                if decoder.is_done() {
                    break;
                }
            }
            if !decoder.is_done() {
                // What the connection reports when it closes here: any state has an answer.
                let _ = decoder.ended_early();
            }
        }
    }
}

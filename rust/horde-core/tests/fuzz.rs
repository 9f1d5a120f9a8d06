//! Property tests of the HTTP/1.1 response reader with a fixed number of cases: valid responses
//! mutated (truncated, bytes flipped, inserted or dropped, sizes made huge, line ends removed)
//! and plain random bytes, served over real loopback connections to a `Session`. Whatever comes,
//! the request must end (the server closes after writing, so an end of input is always seen),
//! nothing may panic, and a body can never be larger than what was sent. A server that sends
//! without end must meet a limit, not unbounded memory. The generator is a fixed-seed PRNG, so a
//! failure names its case and replays.

use std::sync::Arc;
use std::time::Duration;

use horde_core::{ErrorKind, Request, Session, SessionConfig, Timeouts, UserKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// SplitMix64: small, fast, and good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number below `n` (n > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const VALID: &[&[u8]] = &[
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    b"HTTP/1.0 200 OK\r\nServer: x\r\n\r\nthe body runs until the connection closes",
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok",
    b"HTTP/1.1 204 No Content\r\nX-A: b\r\n\r\n",
    b"HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 23\r\n\r\n\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\xcbH\xcd\xc9\xc9\x07\x00\x86\xa6\x106\x05\x00\x00\x00",
    b"HTTP/1.1 200 OK\r\nSet-Cookie: a=b; Path=/\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx",
    b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n",
];

const HUGE: &[&[u8]] = &[
    b"18446744073709551615",
    b"18446744073709551616",
    b"99999999999999999999999999",
    b"ffffffffffffffff",
    b"1ffffffffffffffff",
    b"-1",
    b"0x10",
    b"",
];

/// A valid response with one to three mutations.
fn mutated(rng: &mut Rng) -> Vec<u8> {
    let mut r = rng.pick(VALID).to_vec();
    for _ in 0..1 + rng.below(3) {
        if r.is_empty() {
            break;
        }
        let at = rng.below(r.len());
        match rng.below(8) {
            0 => r.truncate(at),
            1 => r[at] ^= 1 << rng.below(8),
            2 => r[at] = rng.next() as u8,
            3 => {
                let junk: Vec<u8> = (0..1 + rng.below(8)).map(|_| rng.next() as u8).collect();
                r.splice(at..at, junk);
            }
            4 => {
                let end = (at + 1 + rng.below(6)).min(r.len());
                r.drain(at..end);
            }
            5 => {
                // A run of digits or hex digits becomes a huge, negative or empty size.
                let digits = |b: &u8| b.is_ascii_hexdigit();
                if let Some(start) = (at..r.len()).find(|&i| digits(&r[i])) {
                    let end = (start..r.len())
                        .find(|&i| !digits(&r[i]))
                        .unwrap_or(r.len());
                    r.splice(start..end, rng.pick(HUGE).iter().copied());
                }
            }
            6 => {
                // A line end loses its CR or its LF.
                if let Some(i) = (at..r.len()).find(|&i| r[i] == b'\r' || r[i] == b'\n') {
                    r.remove(i);
                }
            }
            _ => {
                let end = (at + 1 + rng.below(16)).min(r.len());
                let copy = r[at..end].to_vec();
                r.splice(at..at, copy);
            }
        }
    }
    r
}

/// Random bytes, mostly from the alphabet of HTTP heads so that some get past the status line.
fn random(rng: &mut Rng) -> Vec<u8> {
    const ALPHABET: &[u8] = b"HTTP/1.0 200OK\r\n:;,-abcdefABCDEF0123456789\t \x00\xff";
    let mut r = if rng.below(2) == 0 {
        b"HTTP/1.1 200 OK\r\n".to_vec()
    } else {
        Vec::new()
    };
    for _ in 0..rng.below(200) {
        r.push(if rng.below(4) == 0 {
            rng.next() as u8
        } else {
            *rng.pick(ALPHABET)
        });
    }
    r
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Reads a request head; None if the client went away first.
async fn read_head(sock: &mut TcpStream) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match sock.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    Some(buf)
}

/// Serves `responses[n]` for a request of `/n`, then closes the connection.
async fn serve(responses: Arc<Vec<Vec<u8>>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let responses = responses.clone();
            tokio::spawn(async move {
                let Some(head) = read_head(&mut sock).await else {
                    return;
                };
                let path = head.split(|&b| b == b' ').nth(1).unwrap_or(b"/");
                let n: usize = std::str::from_utf8(&path[1..])
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                let _ = sock.write_all(&responses[n]).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    format!("http://{addr}")
}

#[test]
fn mutated_and_random_responses_end_cleanly() {
    const CASES: usize = 2000;
    let mut rng = Rng(0x5eed_f4a1_1011);
    let responses: Vec<Vec<u8>> = (0..CASES)
        .map(|i| {
            if i % 4 == 3 {
                random(&mut rng)
            } else {
                mutated(&mut rng)
            }
        })
        .collect();
    let responses = Arc::new(responses);
    let rt = rt();
    let url = rt.block_on(serve(responses.clone()));
    let session = Session::new(SessionConfig::default()).unwrap();
    let (mut ok, mut failed) = (0, 0);
    for (i, sent) in responses.iter().enumerate() {
        let request = Request {
            // Redirects stay unfollowed: a mutated Location could name any host.
            allow_redirects: false,
            // A backstop only: the server always closes, so no case should wait for it.
            timeouts: Some(Timeouts {
                connect: Some(Duration::from_secs(5)),
                read: Some(Duration::from_secs(10)),
                total: Some(Duration::from_secs(20)),
            }),
            ..Request::get(format!("{url}/{i}"))
        };
        match rt.block_on(session.execute(request)) {
            Ok(response) => {
                ok += 1;
                // A decoded gzip body may be larger than the bytes sent, within its own bound.
                let limit = if sent.windows(4).any(|w| w == b"gzip") {
                    1 << 20
                } else {
                    sent.len()
                };
                assert!(
                    response.body.len() <= limit,
                    "case {i}: a {}-byte body from {} bytes: {:?}",
                    response.body.len(),
                    sent.len(),
                    String::from_utf8_lossy(sent)
                );
            }
            Err(e) => {
                failed += 1;
                assert!(
                    !matches!(e.kind, ErrorKind::ReadTimeout | ErrorKind::Internal),
                    "case {i}: {e} for {:?}",
                    String::from_utf8_lossy(sent)
                );
                // Both clients' words exist for every failure.
                for kind in [UserKind::HttpUser, UserKind::FastHttpUser] {
                    assert!(!kind.transport_failure(&e).text.is_empty());
                }
            }
        }
    }
    // The mix exercises both outcomes, not one of them only.
    assert!(
        ok > CASES / 10 && failed > CASES / 10,
        "{ok} ok, {failed} failed"
    );
}

/// A server that writes `head` and then `filler` over and over, up to `total` bytes, without
/// ever closing: the client must stop it with a limit.
async fn endless(head: &'static [u8], filler: &'static [u8], total: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                if read_head(&mut sock).await.is_none() {
                    return;
                }
                let mut block = Vec::with_capacity(64 * 1024);
                while block.len() < 64 * 1024 {
                    block.extend_from_slice(filler);
                }
                if sock.write_all(head).await.is_err() {
                    return;
                }
                let mut written = 0;
                while written < total {
                    if sock.write_all(&block).await.is_err() {
                        return; // the client gave up, as it should
                    }
                    written += block.len();
                }
                tokio::time::sleep(Duration::from_secs(30)).await;
            });
        }
    });
    format!("http://{addr}")
}

#[test]
fn endless_heads_size_lines_and_trailers_meet_a_limit() {
    const TOTAL: usize = 64 << 20;
    let rt = rt();
    let session = Session::new(SessionConfig::default()).unwrap();
    let cases: [(&[u8], &[u8], &str); 4] = [
        (
            b"HTTP/1.1 200 OK\r\n",
            b"X-Filler: abcdefghijklmnop\r\n",
            "too many headers",
        ),
        (
            b"HTTP/1.1 200 OK\r\nX-Long: ",
            b"abcdefghijklmnop",
            "header section too large",
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;",
            b"ext=value;",
            "chunk size line too long",
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n",
            b"X-Trailer: value\r\n",
            "trailer section too large",
        ),
    ];
    for (head, filler, expected) in cases {
        let url = rt.block_on(endless(head, filler, TOTAL));
        let err = rt
            .block_on(session.execute(Request {
                timeouts: Some(Timeouts {
                    connect: Some(Duration::from_secs(5)),
                    read: Some(Duration::from_secs(20)),
                    total: None,
                }),
                ..Request::get(format!("{url}/"))
            }))
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Protocol, "{err}");
        assert!(err.message.contains(expected), "{err}");
    }
}

//! The engine's HTTP sessions against the demo target and against small servers that misbehave
//! on purpose: each misbehaviour must come back as a failed request with a readable error.

use std::time::{Duration, Instant};

use horde_core::stats::now_epoch_secs;
use horde_core::{
    ErrorKind, Request, RequestStats, Session, SessionConfig, Timeouts, TlsMode, UserKind,
};
use horde_demo::{DemoConfig, DemoServer};
use http::Method;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn demo() -> DemoServer {
    DemoServer::start(DemoConfig::default()).expect("demo target starts")
}

fn session() -> Session {
    Session::new(SessionConfig::default()).unwrap()
}

fn timeouts(read_ms: u64) -> Option<Timeouts> {
    Some(Timeouts {
        connect: Some(Duration::from_secs(2)),
        read: Some(Duration::from_millis(read_ms)),
        total: None,
    })
}

/// Reads one request head (up to the blank line) from a raw socket.
async fn read_head(sock: &mut TcpStream) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match sock.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    buf
}

/// A one-off server: runs `behave` on each accepted connection. Returns its base URL.
async fn misbehaving<F, Fut>(behave: F) -> String
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            tokio::spawn(behave(sock));
        }
    });
    format!("http://{addr}")
}

#[test]
fn hello_from_the_demo_target() {
    let server = demo();
    let r = rt()
        .block_on(session().execute(Request::get(format!("{}/", server.url()))))
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(&r.body[..], b"Hello, World!");
    assert!(r.history.is_empty());
}

#[test]
fn refused_connection_is_a_failed_request() {
    let rt = rt();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = rt
        .block_on(session().execute(Request::get(format!("http://127.0.0.1:{port}/"))))
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::ConnectRefused);
    assert_eq!(
        UserKind::HttpUser.transport_failure(&err).text,
        "ConnectionRefusedError(111, 'Connection refused')"
    );
}

#[test]
fn reset_in_the_middle_of_the_body() {
    let rt = rt();
    let url = rt.block_on(misbehaving(|mut sock| async move {
        read_head(&mut sock).await;
        let _ = sock
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
            .await;
        let _ = sock.write_all(&[b'x'; 1000]).await;
        let _ = sock.flush().await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        // Linger 0 makes close() send RST instead of FIN.
        let std = sock.into_std().unwrap();
        let sock2 = socket_with_linger_zero(std);
        drop(sock2);
    }));
    let err = rt
        .block_on(session().execute(Request {
            timeouts: timeouts(5000),
            ..Request::get(format!("{url}/"))
        }))
        .unwrap_err();
    assert!(
        matches!(err.kind, ErrorKind::Reset | ErrorKind::Protocol),
        "{err}"
    );
}

fn socket_with_linger_zero(s: std::net::TcpStream) -> std::net::TcpStream {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt on a valid socket with a correctly sized linger struct.
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
    s
}

#[test]
fn stalled_server_times_out() {
    let rt = rt();
    let url = rt.block_on(misbehaving(|mut sock| async move {
        read_head(&mut sock).await;
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(sock);
    }));
    let start = Instant::now();
    let err = rt
        .block_on(session().execute(Request {
            timeouts: timeouts(300),
            ..Request::get(format!("{url}/"))
        }))
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::ReadTimeout);
    let port = url.rsplit(':').next().unwrap();
    assert_eq!(
        UserKind::HttpUser.transport_failure(&err).text,
        format!(
            "ReadTimeout(ReadTimeoutError(\"HTTPConnectionPool(host='127.0.0.1', port={port}): Read timed \
             out. (read timeout=0.3)\"))"
        )
    );
    assert!(start.elapsed() < Duration::from_secs(10));
    assert!(err.elapsed >= Duration::from_millis(290));
}

#[test]
fn total_timeout_covers_a_slow_trickle() {
    let rt = rt();
    let url = rt.block_on(misbehaving(|mut sock| async move {
        read_head(&mut sock).await;
        let _ = sock
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
            .await;
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if sock.write_all(b"x").await.is_err() {
                return;
            }
        }
    }));
    let err = rt
        .block_on(session().execute(Request {
            timeouts: Some(Timeouts {
                connect: None,
                read: Some(Duration::from_secs(1)),
                total: Some(Duration::from_millis(400)),
            }),
            ..Request::get(format!("{url}/"))
        }))
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::TotalTimeout);
}

#[test]
fn garbage_response_is_a_protocol_error() {
    let rt = rt();
    let url = rt.block_on(misbehaving(|mut sock| async move {
        read_head(&mut sock).await;
        let _ = sock.write_all(b"SSH-2.0-OpenSSH_9.2\r\n\r\n").await;
    }));
    let err = rt
        .block_on(session().execute(Request::get(format!("{url}/"))))
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Protocol);
    assert!(err.message.contains("malformed"), "{}", err.message);
}

#[test]
fn closed_without_answer_is_a_protocol_error() {
    let rt = rt();
    let url = rt.block_on(misbehaving(|mut sock| async move {
        read_head(&mut sock).await;
    }));
    let err = rt
        .block_on(session().execute(Request::get(format!("{url}/"))))
        .unwrap_err();
    assert!(
        matches!(err.kind, ErrorKind::Protocol | ErrorKind::Reset),
        "{err}"
    );
}

#[test]
fn ten_megabyte_body() {
    let rt = rt();
    const SIZE: usize = 10 * 1024 * 1024;
    let url = rt.block_on(misbehaving(|mut sock| async move {
        read_head(&mut sock).await;
        let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {SIZE}\r\n\r\n");
        let _ = sock.write_all(head.as_bytes()).await;
        let chunk = vec![b'z'; 64 * 1024];
        for _ in 0..SIZE / chunk.len() {
            if sock.write_all(&chunk).await.is_err() {
                return;
            }
        }
    }));
    let r = rt
        .block_on(session().execute(Request::get(format!("{url}/"))))
        .unwrap();
    assert_eq!(r.body.len(), SIZE);
    assert!(r.body.iter().all(|&b| b == b'z'));

    let server = demo();
    let r = rt
        .block_on(session().execute(Request::get(format!("{}/bytes/{SIZE}", server.url()))))
        .unwrap();
    assert_eq!(r.body.len(), SIZE);
}

#[test]
fn idle_connection_closed_by_server_is_retried_once() {
    let rt = rt();
    // Answers one request per connection, then closes without saying "Connection: close".
    let url = rt.block_on(misbehaving(|mut sock| async move {
        read_head(&mut sock).await;
        let _ = sock
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            .await;
        let _ = sock.shutdown().await;
    }));
    let s = session();
    for _ in 0..3 {
        let r = rt
            .block_on(s.execute(Request::get(format!("{url}/"))))
            .unwrap();
        assert_eq!(&r.body[..], b"ok");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn keep_alive_reuses_one_connection() {
    let rt = rt();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = accepted.clone();
    let url = rt.block_on(misbehaving(move |mut sock| {
        count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        async move {
            loop {
                if read_head(&mut sock).await.is_empty() {
                    return;
                }
                if sock
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
    }));
    let s = session();
    for _ in 0..20 {
        rt.block_on(s.execute(Request::get(format!("{url}/"))))
            .unwrap();
    }
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[test]
fn cookies_are_per_session() {
    let server = demo();
    let rt = rt();
    let a = session();
    let b = session();
    let r = rt
        .block_on(a.execute(Request::get(format!(
            "{}/cookies/set?flavour=oat",
            server.url()
        ))))
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.history.len(), 1);
    assert!(String::from_utf8_lossy(&r.body).contains("oat"));
    let seen_by_b = rt
        .block_on(b.execute(Request::get(format!("{}/cookies", server.url()))))
        .unwrap();
    assert!(!String::from_utf8_lossy(&seen_by_b.body).contains("oat"));
    assert_eq!(a.cookies().len(), 1);
    assert!(b.cookies().is_empty());
    a.clear_cookies(None, None, None);
    assert!(a.cookies().is_empty());
}

#[test]
fn redirects_followed_limited_or_not_at_all() {
    let server = demo();
    let rt = rt();
    let s = session();
    let r = rt
        .block_on(s.execute(Request::get(format!("{}/redirect/3", server.url()))))
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.history.len(), 3);
    assert!(r.url.ends_with("/redirect/0"));

    let r = rt
        .block_on(s.execute(Request {
            allow_redirects: false,
            ..Request::get(format!("{}/redirect/3", server.url()))
        }))
        .unwrap();
    assert_eq!(r.status, 302);

    let limited = Session::new(SessionConfig {
        max_redirects: 2,
        ..SessionConfig::default()
    })
    .unwrap();
    let err = rt
        .block_on(limited.execute(Request::get(format!("{}/redirect/5", server.url()))))
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::TooManyRedirects);
    assert_eq!(
        UserKind::HttpUser.transport_failure(&err).text,
        "TooManyRedirects('Exceeded 2 redirects.')"
    );
}

#[test]
fn post_to_303_becomes_get_without_body() {
    let server = demo();
    let r = rt()
        .block_on(session().execute(Request {
            body: Some("payload".into()),
            ..Request::new(
                Method::POST,
                format!("{}/redirect-to?url=/echo&status_code=303", server.url()),
            )
        }))
        .unwrap();
    let echo: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(echo["method"], "GET");
    assert_eq!(echo["data"], "");
}

#[test]
fn gzip_and_deflate_are_decoded() {
    let server = demo();
    let rt = rt();
    for (path, key) in [("gzip", "gzipped"), ("deflate", "deflated")] {
        let r = rt
            .block_on(session().execute(Request::get(format!("{}/{path}", server.url()))))
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v[key], true);
    }
}

#[test]
fn headers_body_and_basic_auth_reach_the_server() {
    let server = demo();
    let rt = rt();
    let r = rt
        .block_on(
            session().execute(Request {
                headers: [
                    ("X-Trace".into(), "abc".into()),
                    ("Content-Type".into(), "application/json".into()),
                ]
                .into(),
                body: Some(r#"{"a": 1}"#.into()),
                ..Request::new(Method::PUT, format!("{}/echo?x=1&x=2", server.url()))
            }),
        )
        .unwrap();
    let echo: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(echo["method"], "PUT");
    assert_eq!(echo["headers"]["x-trace"], "abc");
    assert_eq!(echo["json"]["a"], 1);
    assert_eq!(echo["args"]["x"], serde_json::json!(["1", "2"]));

    let auth = format!("Basic {}", "dXNlcjpwYXNz"); // user:pass
    let r = rt
        .block_on(session().execute(Request {
            headers: [("Authorization".into(), auth)].into(),
            ..Request::get(format!("{}/basic-auth/user/pass", server.url()))
        }))
        .unwrap();
    assert_eq!(r.status, 200);
    let r = rt
        .block_on(session().execute(Request::get(format!(
            "{}/basic-auth/user/pass",
            server.url()
        ))))
        .unwrap();
    assert_eq!(r.status, 401);
}

#[test]
fn tls_verification_on_by_default_off_when_asked() {
    let server = DemoServer::start(DemoConfig {
        tls: true,
        ..DemoConfig::default()
    })
    .unwrap();
    let rt = rt();
    let url = format!("{}/", server.url());
    assert!(url.starts_with("https://"));

    let err = rt
        .block_on(session().execute(Request::get(url.clone())))
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Tls, "{err}");

    let insecure = Session::new(SessionConfig {
        tls: TlsMode::Insecure,
        ..SessionConfig::default()
    })
    .unwrap();
    let r = rt
        .block_on(insecure.execute(Request::get(url.clone())))
        .unwrap();
    assert_eq!(&r.body[..], b"Hello, World!");

    let trusting = Session::new(SessionConfig {
        tls: TlsMode::Verify {
            extra_roots_pem: Some(server.cert_pem().unwrap().as_bytes().to_vec()),
        },
        ..SessionConfig::default()
    })
    .unwrap();
    let r = rt.block_on(trusting.execute(Request::get(url))).unwrap();
    assert_eq!(r.status, 200);
}

#[test]
fn bad_urls_and_headers_fail_without_panicking() {
    let rt = rt();
    for url in ["not a url", "ftp://127.0.0.1/", "http://"] {
        let err = rt
            .block_on(session().execute(Request::get(url)))
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidUrl, "{url}");
    }
    let bad_header = Request {
        headers: [("Bad Header".into(), "x".into())].into(),
        ..Request::get("http://127.0.0.1:1/")
    };
    assert_eq!(
        rt.block_on(session().execute(bad_header)).unwrap_err().kind,
        ErrorKind::InvalidHeader
    );
}

#[test]
fn outcomes_are_logged_with_locust_error_texts() {
    let server = demo();
    let rt = rt();
    let stats = RequestStats::new();
    let s = session();
    for path in ["/", "/status/404", "/status/503"] {
        let result = rt.block_on(s.execute(Request::get(format!("{}{path}", server.url()))));
        let o = UserKind::HttpUser.outcome(&result, path);
        stats.record(&o.record("GET", path), now_epoch_secs());
    }
    let snap = stats.snapshot();
    assert_eq!(snap.total.num_requests, 3);
    assert_eq!(snap.total.num_failures, 2);
    let errors: Vec<&str> = snap.errors.iter().map(|e| e.error.as_str()).collect();
    assert!(errors.contains(&"HTTPError('404 Client Error: Not Found for url: /status/404')"));
    assert!(
        errors.contains(&"HTTPError('503 Server Error: Service Unavailable for url: /status/503')")
    );
}

/// A listener whose accept queue is full: the kernel drops further SYNs, so connecting hangs.
fn full_listener() -> (std::os::fd::OwnedFd, u16, Vec<std::net::TcpStream>) {
    use std::os::fd::FromRawFd;
    // SAFETY: plain socket calls on a fresh descriptor; results are checked.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        assert!(fd >= 0);
        let owned = std::os::fd::OwnedFd::from_raw_fd(fd);
        let mut addr: libc::sockaddr_in = std::mem::zeroed();
        addr.sin_family = libc::AF_INET as libc::sa_family_t;
        addr.sin_addr.s_addr = u32::from_ne_bytes([127, 0, 0, 1]);
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        assert_eq!(
            libc::bind(fd, (&addr as *const libc::sockaddr_in).cast(), len),
            0
        );
        assert_eq!(libc::listen(fd, 0), 0);
        let mut bound: libc::sockaddr_in = std::mem::zeroed();
        let mut blen = len;
        libc::getsockname(fd, (&mut bound as *mut libc::sockaddr_in).cast(), &mut blen);
        let port = u16::from_be(bound.sin_port);
        let target = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let mut held = Vec::new();
        for _ in 0..4 {
            if let Ok(s) = std::net::TcpStream::connect_timeout(&target, Duration::from_millis(200))
            {
                held.push(s);
            }
        }
        (owned, port, held)
    }
}

#[test]
fn connect_timeout_when_the_server_never_accepts() {
    let (_listener, port, _held) = full_listener();
    let err = rt()
        .block_on(session().execute(Request {
            timeouts: Some(Timeouts {
                connect: Some(Duration::from_millis(300)),
                read: None,
                total: None,
            }),
            ..Request::get(format!("http://127.0.0.1:{port}/"))
        }))
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::ConnectTimeout, "{err}");
    assert_eq!(
        UserKind::HttpUser.transport_failure(&err).text,
        format!(
            "ConnectTimeoutError(<HTTPConnection(host='127.0.0.1', port={port}) at 0x....>, \
             'Connection to 127.0.0.1 timed out. (connect timeout=0.3)')"
        )
    );
}

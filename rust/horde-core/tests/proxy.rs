//! The engine's sessions through an HTTP proxy: a small proxy written here that forwards
//! absolute-form requests and opens CONNECT tunnels, and notes what it was asked, in front of the
//! demo target (plain and TLS).

use std::sync::{Arc, Mutex};

use horde_core::client::Proxies;
use horde_core::locust::UserKind;
use horde_core::{ErrorKind, Request, Session, SessionConfig, TlsMode};
use horde_demo::{DemoConfig, DemoServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn insecure_session() -> Session {
    Session::new(SessionConfig {
        tls: TlsMode::Insecure,
        ..SessionConfig::default()
    })
    .unwrap()
}

fn through(url: String, proxies: &[(&str, String)]) -> Request {
    let mut request = Request::get(url);
    let explicit = proxies
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Some(v.clone())))
        .collect();
    request.proxies = Some(Arc::new(Proxies::new(
        explicit,
        Vec::new(),
        Vec::new(),
        None,
    )));
    request
}

/// The request heads a proxy received, in order.
type Seen = Arc<Mutex<Vec<String>>>;

/// Reads a request head (up to the blank line), without reading past it.
async fn read_head(sock: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match sock.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// What the proxy does with a CONNECT.
#[derive(Clone, Copy, PartialEq)]
enum OnConnect {
    Tunnel,
    /// Answers 407.
    Refuse,
    /// Closes the connection without answering.
    HangUp,
}

/// A forwarding proxy on 127.0.0.1. Returns its URL and what it saw.
async fn proxy(on_connect: OnConnect) -> (String, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen: Seen = Arc::default();
    let noted = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let noted = noted.clone();
            tokio::spawn(async move {
                let head = read_head(&mut client).await;
                noted.lock().unwrap().push(head.clone());
                let line = head.lines().next().unwrap_or_default().to_owned();
                let mut parts = line.split(' ');
                let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
                if method == "CONNECT" {
                    match on_connect {
                        OnConnect::Tunnel => {}
                        OnConnect::Refuse => {
                            let _ = client
                                .write_all(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n")
                                .await;
                            return;
                        }
                        OnConnect::HangUp => return,
                    }
                    let mut origin = TcpStream::connect(target).await.unwrap();
                    client
                        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                        .await
                        .unwrap();
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut origin).await;
                    return;
                }
                // An absolute-form request: to the origin it names, in origin form.
                let rest = target.strip_prefix("http://").unwrap();
                let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
                let mut origin = TcpStream::connect(authority).await.unwrap();
                let forwarded = head.replacen(target, if path.is_empty() { "/" } else { path }, 1);
                origin.write_all(forwarded.as_bytes()).await.unwrap();
                let _ = tokio::io::copy_bidirectional(&mut client, &mut origin).await;
            });
        }
    });
    (format!("http://{addr}"), seen)
}

#[test]
fn plain_http_goes_to_the_proxy_in_absolute_form_with_its_credentials() {
    let server = DemoServer::start(DemoConfig::default()).unwrap();
    let rt = rt();
    let (proxy_url, seen) = rt.block_on(proxy(OnConnect::Tunnel));
    let with_credentials = proxy_url.replace("http://", "http://scout:s%40cret@");
    let url = format!("{}/echo?x=1", server.url());
    let r = rt
        .block_on(insecure_session().execute(through(url.clone(), &[("http", with_credentials)])))
        .unwrap();
    assert_eq!(r.status, 200);
    let seen = seen.lock().unwrap();
    assert!(
        seen[0].starts_with(&format!("GET {url} HTTP/1.1\r\n")),
        "{}",
        seen[0]
    );
    // base64("scout:s@cret")
    assert!(seen[0].contains("\r\nProxy-Authorization: Basic c2NvdXQ6c0BjcmV0\r\n"));
}

#[test]
fn https_goes_through_a_tunnel_that_carries_only_tls() {
    let server = DemoServer::start(DemoConfig {
        tls: true,
        ..DemoConfig::default()
    })
    .unwrap();
    let rt = rt();
    let (proxy_url, seen) = rt.block_on(proxy(OnConnect::Tunnel));
    let session = insecure_session();
    for n in 0..2 {
        let url = format!("{}/echo?n={n}", server.url());
        let r = rt
            .block_on(session.execute(through(url, &[("https", proxy_url.clone())])))
            .unwrap();
        assert_eq!(r.status, 200);
    }
    // One tunnel, kept alive for the second request; the proxy saw the CONNECT only.
    let seen = seen.lock().unwrap();
    let authority = server.url().trim_start_matches("https://").to_owned();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(seen[0].starts_with(&format!(
        "CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n"
    )));
}

#[test]
fn proxy_failures_are_proxy_errors_with_locusts_texts() {
    let server = DemoServer::start(DemoConfig {
        tls: true,
        ..DemoConfig::default()
    })
    .unwrap();
    let rt = rt();
    let (refusing, _) = rt.block_on(proxy(OnConnect::Refuse));
    let url = format!("{}/", server.url());
    let err = rt
        .block_on(insecure_session().execute(through(url.clone(), &[("all", refusing)])))
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::ProxyTunnel);
    let failure = UserKind::HttpUser.transport_failure(&err);
    assert_eq!(failure.exception, "ProxyError");
    assert_eq!(
        failure.text,
        "OSError('Tunnel connection failed: 407 Proxy Authentication Required')"
    );

    // A proxy that hangs up on CONNECT.
    let (hanging_up, _) = rt.block_on(proxy(OnConnect::HangUp));
    let err = rt
        .block_on(insecure_session().execute(through(url.clone(), &[("all", hanging_up)])))
        .unwrap_err();
    assert_eq!(
        UserKind::HttpUser.transport_failure(&err).exception,
        "ProxyError",
        "{err}"
    );

    // Nothing listens where the proxy should be.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let nowhere = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let err = rt
        .block_on(insecure_session().execute(through(url, &[("https", nowhere)])))
        .unwrap_err();
    let failure = UserKind::HttpUser.transport_failure(&err);
    assert_eq!(failure.exception, "ProxyError");
    assert_eq!(
        failure.text,
        "ConnectionRefusedError(111, 'Connection refused')"
    );
}

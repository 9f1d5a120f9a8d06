//! End-to-end tests: each starts a real server on an ephemeral port and talks to it over TCP,
//! mostly through hyper's low-level client so keep-alive behaviour is exercised as well.

use std::io::Read;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Request};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{DemoConfig, DemoServer};

struct Got {
    status: u16,
    headers: HeaderMap,
    body: Bytes,
}

impl Got {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }
}

fn server() -> DemoServer {
    DemoServer::start(DemoConfig::default()).expect("demo server starts")
}

async fn connect(addr: SocketAddr) -> SendRequest<Full<Bytes>> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    sender
}

async fn send(
    sender: &mut SendRequest<Full<Bytes>>,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Got {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(Full::new(Bytes::copy_from_slice(body))).unwrap();
    sender.ready().await.unwrap();
    let resp = sender.send_request(req).await.unwrap();
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Got {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body,
    }
}

/// One request on a fresh connection.
async fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Got {
    let mut sender = connect(addr).await;
    send(&mut sender, method, path, headers, body).await
}

async fn get(addr: SocketAddr, path: &str) -> Got {
    call(addr, "GET", path, &[], b"").await
}

/// Writes raw bytes and reads until the server closes the connection.
async fn raw(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn server_handle_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<DemoServer>();
}

#[tokio::test]
async fn hello_and_json() {
    let srv = server();
    assert!(srv.url().starts_with("http://127.0.0.1:"));
    assert_eq!(srv.url(), format!("http://{}", srv.addr()));
    assert!(srv.cert_pem().is_none());

    let got = get(srv.addr(), "/").await;
    assert_eq!(got.status, 200);
    assert_eq!(&got.body[..], b"Hello, World!");
    assert_eq!(got.header("content-type"), "text/plain");
    assert_eq!(got.header("content-length"), "13");

    let got = get(srv.addr(), "/json").await;
    assert_eq!(got.status, 200);
    assert_eq!(got.header("content-type"), "application/json");
    assert!(got.json()["slideshow"]["slides"].is_array());
    srv.stop();
}

#[tokio::test]
async fn echo_reflects_the_request() {
    let srv = server();
    let got = call(
        srv.addr(),
        "POST",
        "/echo?a=1&a=2&b=x%20y",
        &[
            ("X-Test", "yes"),
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Cookie", "c1=v1; c2=v2"),
        ],
        b"f=1&f=2&g=3",
    )
    .await;
    assert_eq!(got.status, 200);
    let doc = got.json();
    assert_eq!(doc["method"], "POST");
    assert_eq!(doc["url"], "/echo?a=1&a=2&b=x%20y");
    assert_eq!(doc["path"], "/echo");
    assert_eq!(doc["args"], json!({"a": ["1", "2"], "b": "x y"}));
    assert_eq!(doc["headers"]["x-test"], "yes");
    assert_eq!(doc["form"], json!({"f": ["1", "2"], "g": "3"}));
    assert_eq!(doc["data"], "f=1&f=2&g=3");
    assert_eq!(doc["json"], Value::Null);
    assert_eq!(doc["cookies"], json!({"c1": "v1", "c2": "v2"}));

    let got = call(
        srv.addr(),
        "PUT",
        "/anything/deep/path",
        &[("Content-Type", "application/json")],
        br#"{"k": [1, 2]}"#,
    )
    .await;
    let doc = got.json();
    assert_eq!(doc["method"], "PUT");
    assert_eq!(doc["path"], "/anything/deep/path");
    assert_eq!(doc["json"], json!({"k": [1, 2]}));
    assert_eq!(doc["form"], json!({}));

    assert_eq!(get(srv.addr(), "/get?q=1").await.json()["args"]["q"], "1");
    let got = call(srv.addr(), "POST", "/get", &[], b"").await;
    assert_eq!(got.status, 405);
    assert!(got.header("allow").contains("GET"));
    assert_eq!(
        call(srv.addr(), "DELETE", "/delete", &[], b"").await.status,
        200
    );
}

#[tokio::test]
async fn status_codes() {
    let srv = server();
    let got = get(srv.addr(), "/status/418").await;
    assert_eq!(got.status, 418);
    assert_eq!(got.json(), json!({"status": 418}));

    let got = call(srv.addr(), "POST", "/status/302", &[], b"payload").await;
    assert_eq!(got.status, 302);
    assert_eq!(got.header("location"), "/echo");

    let got = get(srv.addr(), "/status/401").await;
    assert_eq!(got.status, 401);
    assert_eq!(got.header("www-authenticate"), "Basic realm=\"horde\"");

    let got = get(srv.addr(), "/status/204").await;
    assert_eq!(got.status, 204);
    assert!(got.body.is_empty());

    assert_eq!(get(srv.addr(), "/status/100").await.status, 400);
    assert_eq!(get(srv.addr(), "/status/600").await.status, 400);
    assert_eq!(get(srv.addr(), "/status/abc").await.status, 400);
}

#[tokio::test]
async fn not_found_and_method_not_allowed() {
    let srv = server();
    let got = get(srv.addr(), "/nope/x").await;
    assert_eq!(got.status, 404);
    assert_eq!(got.json(), json!({"error": "not found", "path": "/nope/x"}));
    assert_eq!(
        call(srv.addr(), "DELETE", "/json", &[], b"").await.status,
        405
    );
    assert_eq!(call(srv.addr(), "POST", "/", &[], b"x").await.status, 405);
    let head = call(srv.addr(), "HEAD", "/json", &[], b"").await;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
}

#[tokio::test]
async fn redirects() {
    let srv = server();
    let got = get(srv.addr(), "/redirect/3").await;
    assert_eq!(got.status, 302);
    assert_eq!(got.header("location"), "/redirect/2");
    let got = get(srv.addr(), "/redirect/0").await;
    assert_eq!(got.status, 200);
    assert_eq!(got.json(), json!({"redirected": true}));

    let got = get(srv.addr(), "/absolute-redirect/2").await;
    assert_eq!(got.status, 302);
    assert_eq!(
        got.header("location"),
        "http://localhost/absolute-redirect/1"
    );

    let got = call(
        srv.addr(),
        "POST",
        "/redirect-to?url=%2Fjson%3Fa%3D1&status_code=307",
        &[],
        b"",
    )
    .await;
    assert_eq!(got.status, 307);
    assert_eq!(got.header("location"), "/json?a=1");
    let got = get(srv.addr(), "/redirect-to?url=http://example.com/").await;
    assert_eq!(got.status, 302);
    assert_eq!(got.header("location"), "http://example.com/");
    assert_eq!(get(srv.addr(), "/redirect-to").await.status, 400);
}

#[tokio::test]
async fn cookies() {
    let srv = server();
    let got = get(srv.addr(), "/cookies/set?a=1&b=two").await;
    assert_eq!(got.status, 302);
    assert_eq!(got.header("location"), "/cookies");
    let set: Vec<&str> = got
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(set, ["a=1; Path=/", "b=two; Path=/"]);

    let got = get(srv.addr(), "/cookies/set/name/val").await;
    assert_eq!(got.header("set-cookie"), "name=val; Path=/");

    let got = call(
        srv.addr(),
        "GET",
        "/cookies",
        &[("Cookie", "a=1; b=two")],
        b"",
    )
    .await;
    assert_eq!(got.json(), json!({"cookies": {"a": "1", "b": "two"}}));

    let got = get(srv.addr(), "/cookies/delete?a").await;
    assert_eq!(got.status, 302);
    assert_eq!(
        got.header("set-cookie"),
        "a=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/"
    );
}

#[tokio::test]
async fn bytes_are_sized_and_patterned() {
    let srv = server();
    let got = get(srv.addr(), "/bytes/100").await;
    assert_eq!(got.status, 200);
    assert_eq!(got.header("content-type"), "application/octet-stream");
    assert_eq!(got.body.len(), 100);

    let n = 300_000;
    let got = get(srv.addr(), &format!("/bytes/{n}")).await;
    assert_eq!(got.header("content-length"), n.to_string());
    assert_eq!(got.body.len(), n);
    assert!(got
        .body
        .iter()
        .enumerate()
        .all(|(i, b)| *b == (i % 256) as u8));

    assert_eq!(get(srv.addr(), "/bytes/0").await.body.len(), 0);
    assert_eq!(get(srv.addr(), "/bytes/-1").await.status, 400);
}

#[tokio::test]
async fn compressed_bodies_decode() {
    let srv = server();
    let got = get(srv.addr(), "/gzip").await;
    assert_eq!(got.status, 200);
    assert_eq!(got.header("content-encoding"), "gzip");
    let mut text = String::new();
    flate2::read::GzDecoder::new(&got.body[..])
        .read_to_string(&mut text)
        .unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["gzipped"], true);
    assert_eq!(doc["method"], "GET");

    let got = get(srv.addr(), "/deflate").await;
    assert_eq!(got.header("content-encoding"), "deflate");
    let mut text = String::new();
    flate2::read::ZlibDecoder::new(&got.body[..])
        .read_to_string(&mut text)
        .unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["deflated"], true);
}

#[tokio::test]
async fn basic_auth() {
    use base64::Engine as _;
    let srv = server();
    let good = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("alice:s3cret")
    );
    let got = call(
        srv.addr(),
        "GET",
        "/basic-auth/alice/s3cret",
        &[("Authorization", &good)],
        b"",
    )
    .await;
    assert_eq!(got.status, 200);
    assert_eq!(got.json(), json!({"authenticated": true, "user": "alice"}));

    let bad = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("alice:wrong")
    );
    let got = call(
        srv.addr(),
        "GET",
        "/basic-auth/alice/s3cret",
        &[("Authorization", &bad)],
        b"",
    )
    .await;
    assert_eq!(got.status, 401);
    assert_eq!(got.header("www-authenticate"), "Basic realm=\"horde\"");
    assert_eq!(
        get(srv.addr(), "/basic-auth/alice/s3cret").await.status,
        401
    );
}

#[tokio::test]
async fn headers_and_response_headers() {
    let srv = server();
    let got = call(srv.addr(), "GET", "/headers", &[("X-Thing", "1")], b"").await;
    assert_eq!(got.json()["headers"]["x-thing"], "1");

    let got = get(
        srv.addr(),
        "/response-headers?X-A=1&X-A=2&Content-Type=text/x",
    )
    .await;
    assert_eq!(got.status, 200);
    assert_eq!(got.header("content-type"), "text/x");
    let values: Vec<&str> = got
        .headers
        .get_all("x-a")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(values, ["1", "2"]);
    assert_eq!(got.json()["X-A"], json!(["1", "2"]));
}

#[tokio::test]
async fn delay_sleeps() {
    let srv = server();
    let started = std::time::Instant::now();
    let got = get(srv.addr(), "/delay/60").await;
    assert!(started.elapsed() >= std::time::Duration::from_millis(60));
    assert_eq!(got.json(), json!({"delay_ms": 60}));
}

#[tokio::test]
async fn login_and_me() {
    let srv = server();
    let got = call(
        srv.addr(),
        "POST",
        "/login",
        &[("Content-Type", "application/json")],
        br#"{"username": "bob", "password": "pw"}"#,
    )
    .await;
    assert_eq!(got.status, 200);
    let token = got.json()["token"].as_str().unwrap().to_string();
    assert!(!token.is_empty());

    for scheme in ["Bearer", "Token"] {
        let auth = format!("{scheme} {token}");
        let got = call(srv.addr(), "GET", "/me", &[("Authorization", &auth)], b"").await;
        assert_eq!(got.status, 200);
        assert_eq!(got.json(), json!({"username": "bob"}));
    }
    // The same token works on the Conduit side.
    let auth = format!("Token {token}");
    let got = call(
        srv.addr(),
        "GET",
        "/api/user",
        &[("Authorization", &auth)],
        b"",
    )
    .await;
    assert_eq!(got.json()["user"]["username"], "bob");

    assert_eq!(get(srv.addr(), "/me").await.status, 401);
    let got = call(
        srv.addr(),
        "GET",
        "/me",
        &[("Authorization", "Bearer nope")],
        b"",
    )
    .await;
    assert_eq!(got.status, 401);
    let got = call(
        srv.addr(),
        "POST",
        "/login",
        &[],
        br#"{"username": "", "password": "pw"}"#,
    )
    .await;
    assert_eq!(got.status, 400);
    assert!(got.json()["error"].is_string());
}

#[tokio::test]
async fn conduit_flow() {
    let srv = server();
    let addr = srv.addr();
    let mut c = connect(addr).await;

    let got = send(
        &mut c,
        "POST",
        "/api/users/login",
        &[("Content-Type", "application/json")],
        br#"{"user": {"email": "jake@jake.jake", "password": "jakejake"}}"#,
    )
    .await;
    assert_eq!(got.status, 200);
    let user = got.json()["user"].clone();
    assert_eq!(user["username"], "jake");
    assert_eq!(user["email"], "jake@jake.jake");
    assert_eq!(user["bio"], Value::Null);
    let auth = format!("Token {}", user["token"].as_str().unwrap());
    let auth = [("Authorization", auth.as_str())];

    let got = send(
        &mut c,
        "POST",
        "/api/articles",
        &auth,
        br#"{"article": {"title": "How to train your dragon", "description": "Ever wonder how?",
            "body": "You have to believe", "tagList": ["dragons", "training"]}}"#,
    )
    .await;
    assert_eq!(got.status, 201);
    let article = got.json()["article"].clone();
    let slug = article["slug"].as_str().unwrap().to_string();
    assert!(slug.starts_with("how-to-train-your-dragon-"), "{slug}");
    assert_eq!(article["tagList"], json!(["dragons", "training"]));
    assert_eq!(article["favorited"], false);
    assert_eq!(article["favoritesCount"], 0);
    assert_eq!(
        article["author"],
        json!({"username": "jake", "bio": null, "image": null, "following": false})
    );
    let created = article["createdAt"].as_str().unwrap();
    assert_eq!(created.len(), "2026-11-27T09:00:00.000Z".len());
    assert!(created.ends_with('Z'));

    // Same title again gets a different slug.
    let got = send(
        &mut c,
        "POST",
        "/api/articles",
        &auth,
        br#"{"article": {"title": "How to train your dragon"}}"#,
    )
    .await;
    assert_eq!(got.status, 201);
    assert_ne!(got.json()["article"]["slug"], slug.as_str());

    let got = send(&mut c, "GET", &format!("/api/articles/{slug}"), &[], b"").await;
    assert_eq!(got.status, 200);
    assert_eq!(got.json()["article"]["body"], "You have to believe");

    let got = send(&mut c, "GET", "/api/articles?tag=dragons", &[], b"").await;
    assert_eq!(got.json()["articlesCount"], 1);
    let got = send(&mut c, "GET", "/api/articles?limit=1", &[], b"").await;
    let doc = got.json();
    assert_eq!(doc["articlesCount"], 2);
    assert_eq!(doc["articles"].as_array().unwrap().len(), 1);
    assert_ne!(doc["articles"][0]["slug"], slug.as_str(), "newest first");
    let got = send(&mut c, "GET", "/api/tags", &[], b"").await;
    assert_eq!(got.json(), json!({"tags": ["dragons", "training"]}));

    let fav = format!("/api/articles/{slug}/favorite");
    let got = send(&mut c, "POST", &fav, &auth, b"").await;
    assert_eq!(got.status, 200);
    assert_eq!(got.json()["article"]["favorited"], true);
    assert_eq!(got.json()["article"]["favoritesCount"], 1);
    let got = send(&mut c, "GET", "/api/articles?favorited=jake", &[], b"").await;
    assert_eq!(got.json()["articlesCount"], 1);
    let got = send(&mut c, "GET", &format!("/api/articles/{slug}"), &[], b"").await;
    assert_eq!(got.json()["article"]["favorited"], false, "per viewer");
    let got = send(&mut c, "DELETE", &fav, &auth, b"").await;
    assert_eq!(got.json()["article"]["favoritesCount"], 0);

    let comments = format!("/api/articles/{slug}/comments");
    let got = send(
        &mut c,
        "POST",
        &comments,
        &auth,
        br#"{"comment": {"body": "Thank you so much!"}}"#,
    )
    .await;
    assert_eq!(got.status, 201);
    let comment = got.json()["comment"].clone();
    assert_eq!(comment["body"], "Thank you so much!");
    assert_eq!(comment["author"]["username"], "jake");
    let id = comment["id"].as_u64().unwrap();
    let got = send(&mut c, "GET", &comments, &[], b"").await;
    assert_eq!(got.json()["comments"].as_array().unwrap().len(), 1);

    // Another user may neither edit nor delete jake's things.
    let got = send(
        &mut c,
        "POST",
        "/api/users",
        &[],
        br#"{"user": {"username": "mallory", "email": "m@x.y", "password": "pw"}}"#,
    )
    .await;
    assert_eq!(got.status, 201);
    let other = format!("Token {}", got.json()["user"]["token"].as_str().unwrap());
    let other = [("Authorization", other.as_str())];
    let got = send(
        &mut c,
        "PUT",
        &format!("/api/articles/{slug}"),
        &other,
        br#"{"article": {"title": "pwned"}}"#,
    )
    .await;
    assert_eq!(got.status, 403);
    let got = send(&mut c, "DELETE", &format!("{comments}/{id}"), &other, b"").await;
    assert_eq!(got.status, 403);

    let got = send(
        &mut c,
        "PUT",
        &format!("/api/articles/{slug}"),
        &auth,
        br#"{"article": {"body": "Believe harder"}}"#,
    )
    .await;
    assert_eq!(got.status, 200);
    assert_eq!(got.json()["article"]["body"], "Believe harder");

    let got = send(&mut c, "DELETE", &format!("{comments}/{id}"), &auth, b"").await;
    assert_eq!(got.status, 200);
    assert_eq!(got.json(), json!({}));
    let got = send(&mut c, "GET", &comments, &[], b"").await;
    assert_eq!(got.json(), json!({"comments": []}));

    let got = send(
        &mut c,
        "DELETE",
        &format!("/api/articles/{slug}"),
        &auth,
        b"",
    )
    .await;
    assert_eq!(got.status, 200);
    assert_eq!(got.json(), json!({}));
    let got = send(&mut c, "GET", &format!("/api/articles/{slug}"), &[], b"").await;
    assert_eq!(got.status, 404);
    assert_eq!(got.json(), json!({"errors": {"article": ["not found"]}}));
}

#[tokio::test]
async fn conduit_validation() {
    let srv = server();
    let addr = srv.addr();
    let unauthorized = json!({"errors": {"body": ["unauthorized"]}});

    let got = call(
        addr,
        "POST",
        "/api/articles",
        &[],
        br#"{"article": {"title": "t"}}"#,
    )
    .await;
    assert_eq!(got.status, 401);
    assert_eq!(got.json(), unauthorized);
    let got = call(
        addr,
        "GET",
        "/api/user",
        &[("Authorization", "Token bogus")],
        b"",
    )
    .await;
    assert_eq!(got.status, 401);

    let got = call(addr, "POST", "/api/users/login", &[], b"{not json").await;
    assert_eq!(got.status, 422);
    let msg = got.json()["errors"]["body"][0]
        .as_str()
        .unwrap()
        .to_string();
    assert!(msg.starts_with("invalid JSON: "), "{msg}");
    let got = call(
        addr,
        "POST",
        "/api/users/login",
        &[],
        br#"{"user": {"email": "", "password": "x"}}"#,
    )
    .await;
    assert_eq!(got.status, 422);
    assert!(got.json()["errors"]["body"].is_array());

    let got = call(
        addr,
        "POST",
        "/api/users/login",
        &[],
        br#"{"user": {"email": "a@b.c", "password": "x"}}"#,
    )
    .await;
    let auth = format!("Bearer {}", got.json()["user"]["token"].as_str().unwrap());
    let auth = [("Authorization", auth.as_str())];
    let got = call(addr, "POST", "/api/articles", &auth, br#"{"article": {}}"#).await;
    assert_eq!(got.status, 422);
    let got = call(addr, "POST", "/api/articles", &auth, b"]").await;
    assert_eq!(got.status, 422);
    let got = call(addr, "GET", "/api/articles/missing-1", &[], b"").await;
    assert_eq!(got.status, 404);
    let got = call(addr, "PATCH", "/api/articles", &auth, b"").await;
    assert_eq!(got.status, 405);
}

#[tokio::test]
async fn keep_alive_serves_several_requests_per_connection() {
    let srv = server();
    let mut c = connect(srv.addr()).await;
    for _ in 0..3 {
        let got = send(&mut c, "GET", "/", &[], b"").await;
        assert_eq!(&got.body[..], b"Hello, World!");
    }
    let got = send(&mut c, "POST", "/status/201", &[], b"ignored body").await;
    assert_eq!(got.status, 201);
    let got = send(&mut c, "GET", "/json", &[], b"").await;
    assert_eq!(got.status, 200);

    // Two pipelined requests written at once, answered in order on the same socket.
    let text = raw(
        srv.addr(),
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /status/202 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    let first = text.find("HTTP/1.1 200 OK").expect("first response");
    let second = text.find("HTTP/1.1 202 Accepted").expect("second response");
    assert!(first < second);
}

#[tokio::test]
async fn http10_and_misbehaving_clients() {
    let srv = server();
    let text = raw(srv.addr(), b"GET / HTTP/1.0\r\n\r\n").await;
    assert!(text.contains(" 200 OK\r\n"), "{text}");
    assert!(text.ends_with("Hello, World!"), "{text}");

    let text = raw(srv.addr(), b"\x00\x01garbage that is not HTTP\r\n\r\n").await;
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 400"),
        "{text}"
    );

    // A client that disconnects half-way through a request.
    let mut stream = TcpStream::connect(srv.addr()).await.unwrap();
    stream
        .write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
        .await
        .unwrap();
    drop(stream);

    let text = raw(
        srv.addr(),
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 20000000\r\n\r\n",
    )
    .await;
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");

    let got = get(srv.addr(), "/__panic").await;
    assert_eq!(got.status, 500);
    assert_eq!(got.json(), json!({"error": "internal server error"}));

    assert_eq!(get(srv.addr(), "/").await.status, 200);
}

#[tokio::test]
async fn stop_closes_the_port() {
    let srv = server();
    let addr = srv.addr();
    // An idle keep-alive connection must not hold up shutdown.
    let mut idle = connect(addr).await;
    assert_eq!(send(&mut idle, "GET", "/", &[], b"").await.status, 200);
    srv.stop();
    assert!(TcpStream::connect(addr).await.is_err());

    let srv = DemoServer::start(DemoConfig {
        threads: 2,
        ..DemoConfig::default()
    })
    .unwrap();
    let addr = srv.addr();
    assert_eq!(get(addr, "/").await.status, 200);
    drop(srv);
    assert!(TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn stop_does_not_wait_for_long_requests() {
    let srv = server();
    let mut stream = TcpStream::connect(srv.addr()).await.unwrap();
    stream
        .write_all(b"GET /delay/60000 HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let started = std::time::Instant::now();
    srv.stop();
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    // The cut-off request ends with the connection closing, not with a hang.
    let mut out = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        stream.read_to_end(&mut out),
    )
    .await;
    assert!(read.is_ok());
}

#[tokio::test]
async fn tls_smoke() {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};

    let srv = DemoServer::start(DemoConfig {
        tls: true,
        ..DemoConfig::default()
    })
    .unwrap();
    assert!(srv.url().starts_with("https://127.0.0.1:"));
    let pem = srv.cert_pem().expect("certificate");
    let cert = CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));

    for name in ["localhost", "127.0.0.1"] {
        let tcp = TcpStream::connect(srv.addr()).await.unwrap();
        let server_name = ServerName::try_from(name.to_string()).unwrap();
        let tls = connector.connect(server_name, tcp).await.unwrap();
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .unwrap();
        tokio::spawn(conn);
        let got = send(&mut sender, "GET", "/", &[], b"").await;
        assert_eq!(&got.body[..], b"Hello, World!");
        let got = send(&mut sender, "GET", "/absolute-redirect/1", &[], b"").await;
        assert_eq!(
            got.header("location"),
            "https://localhost/absolute-redirect/0"
        );
    }
    srv.stop();
}

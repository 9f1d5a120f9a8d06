//! Request routing and the httpbin-style routes of the demo server; the Conduit API and the
//! token login live in `conduit`. Handlers return `Reply` so `?` can bail out with an error
//! response (405, 400, ...) as soon as something is wrong.

// The error side of `Reply` is a complete response, no bigger than the success side; boxing it
// would only add an allocation to every error path.
#![allow(clippy::result_large_err)]

use std::borrow::Cow;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use flate2::write::{GzEncoder, ZlibEncoder};
use flate2::Compression;
use http::header::{
    HeaderName, HeaderValue, ALLOW, AUTHORIZATION, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE,
    COOKIE, HOST, LOCATION, SET_COOKIE, WWW_AUTHENTICATE,
};
use http::request::Parts;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::{Body, Incoming};
use serde_json::{json, Map, Value};

use super::{conduit, DemoBody, State};

pub(super) type Resp = Response<DemoBody>;
/// `Err` carries a finished error response, so handlers can use `?` on validation steps.
pub(super) type Reply = Result<Resp, Resp>;

const MAX_REQUEST_BODY: usize = 16 * 1024 * 1024;
const MAX_BYTES: u64 = 100 * 1024 * 1024;
const MAX_DELAY_MS: u64 = 60_000;

const TEXT_PLAIN: HeaderValue = HeaderValue::from_static("text/plain");
const APPLICATION_JSON: HeaderValue = HeaderValue::from_static("application/json");
const OCTET_STREAM: HeaderValue = HeaderValue::from_static("application/octet-stream");
const BASIC_REALM: HeaderValue = HeaderValue::from_static("Basic realm=\"horde\"");

const SLIDESHOW: &str = concat!(
    r#"{"slideshow":{"author":"horde","date":"2026-01-01","title":"Load testing with horde","#,
    r#""slides":[{"title":"Why load test?","type":"all"},"#,
    r#"{"items":["Write a locustfile","Point it at the demo server","Read the stats"],"#,
    r#""title":"Overview","type":"all"}]}}"#
);

pub(super) async fn handle(req: Request<Incoming>, state: Arc<State>, peer: SocketAddr) -> Resp {
    state
        .served
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    if let Some(stall) = state.stall {
        let hold = stall.hold(state.started.elapsed());
        if !hold.is_zero() {
            tokio::time::sleep(hold).await;
        }
    }
    // The benchmark route is answered before the request is taken apart or anything allocated.
    if req.uri().path() == "/"
        && (req.method() == Method::GET || req.method() == Method::HEAD)
        && req.body().is_end_stream()
    {
        return hello();
    }
    let (parts, body) = req.into_parts();
    // Reading every body up front keeps keep-alive working on routes that ignore it: hyper
    // closes a connection whose request body was left unread.
    let body = match read_body(&parts, body).await {
        Ok(body) => body,
        Err(resp) => return resp,
    };
    match route(&state, &parts, &body, peer).await {
        Ok(resp) | Err(resp) => resp,
    }
}

async fn read_body(parts: &Parts, body: Incoming) -> Result<Bytes, Resp> {
    if body.is_end_stream() {
        return Ok(Bytes::new());
    }
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_REQUEST_BODY as u64) {
        return Err(too_large());
    }
    match Limited::new(body, MAX_REQUEST_BODY).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<LengthLimitError>() => Err(too_large()),
        Err(_) => Err(error(
            StatusCode::BAD_REQUEST,
            "could not read request body",
        )),
    }
}

async fn route(st: &State, parts: &Parts, body: &Bytes, peer: SocketAddr) -> Reply {
    let m = &parts.method;
    let path = parts.uri.path();
    let segs: Vec<&str> = path.strip_prefix('/').unwrap_or(path).split('/').collect();
    match segs.as_slice() {
        [""] => {
            allow(m, &[Method::GET])?;
            Ok(hello())
        }
        ["json"] => {
            allow(m, &[Method::GET])?;
            Ok(json_bytes(
                StatusCode::OK,
                Bytes::from_static(SLIDESHOW.as_bytes()),
            ))
        }
        ["echo"] | ["anything", ..] => Ok(echo(parts, body, peer)),
        ["get"] => verb_echo(&Method::GET, parts, body, peer),
        ["post"] => verb_echo(&Method::POST, parts, body, peer),
        ["put"] => verb_echo(&Method::PUT, parts, body, peer),
        ["patch"] => verb_echo(&Method::PATCH, parts, body, peer),
        ["delete"] => verb_echo(&Method::DELETE, parts, body, peer),
        ["delay", ms] => {
            allow(m, &[Method::GET])?;
            let ms = parse_num::<u64>(ms, "invalid delay")?.min(MAX_DELAY_MS);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok(json_value(StatusCode::OK, &json!({ "delay_ms": ms })))
        }
        ["status", code] => status(code),
        ["bytes", n] => {
            allow(m, &[Method::GET])?;
            let n = parse_num::<u64>(n, "invalid byte count")?.min(MAX_BYTES);
            let mut resp = Response::new(DemoBody::pattern(n));
            resp.headers_mut().insert(CONTENT_TYPE, OCTET_STREAM);
            Ok(resp)
        }
        ["gzip"] => {
            allow(m, &[Method::GET])?;
            compressed(parts, true)
        }
        ["deflate"] => {
            allow(m, &[Method::GET])?;
            compressed(parts, false)
        }
        ["redirect", n] | ["relative-redirect", n] => {
            allow(m, &[Method::GET])?;
            redirect(n, "", segs[0])
        }
        ["absolute-redirect", n] => {
            allow(m, &[Method::GET])?;
            redirect(n, &origin(st, parts), "absolute-redirect")
        }
        ["redirect-to"] => redirect_to(parts),
        ["cookies"] => {
            allow(m, &[Method::GET])?;
            Ok(json_value(
                StatusCode::OK,
                &json!({ "cookies": cookies_map(parts) }),
            ))
        }
        ["cookies", "set"] => {
            allow(m, &[Method::GET])?;
            let pairs: Vec<(String, String)> = query_pairs(parts)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            set_cookies(pairs.iter().map(|(k, v)| format!("{k}={v}; Path=/")))
        }
        ["cookies", "set", name, value] => {
            allow(m, &[Method::GET])?;
            let (name, value) = (percent_decode(name), percent_decode(value));
            set_cookies(std::iter::once(format!("{name}={value}; Path=/")))
        }
        ["cookies", "delete"] => {
            allow(m, &[Method::GET])?;
            let names: Vec<String> = query_pairs(parts).map(|(k, _)| k.into_owned()).collect();
            set_cookies(
                names.iter().map(|k| {
                    format!("{k}=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/")
                }),
            )
        }
        ["basic-auth", user, passwd] => {
            allow(m, &[Method::GET])?;
            basic_auth(parts, &percent_decode(user), &percent_decode(passwd))
        }
        ["headers"] => {
            allow(m, &[Method::GET])?;
            Ok(json_value(
                StatusCode::OK,
                &json!({ "headers": headers_map(parts) }),
            ))
        }
        ["response-headers"] => {
            allow(m, &[Method::GET, Method::POST])?;
            response_headers(parts)
        }
        ["login"] => {
            allow(m, &[Method::POST])?;
            conduit::login(st, body)
        }
        ["me"] => {
            allow(m, &[Method::GET])?;
            conduit::me(st, parts)
        }
        ["api", rest @ ..] => conduit::route(st, parts, rest, body),
        #[cfg(test)]
        ["__panic"] => panic!("deliberate panic from the demo server's test route"),
        _ => Err(not_found(path)),
    }
}

fn hello() -> Resp {
    let mut resp = Response::new(DemoBody::full(Bytes::from_static(b"Hello, World!")));
    resp.headers_mut().insert(CONTENT_TYPE, TEXT_PLAIN);
    resp
}

fn verb_echo(verb: &Method, parts: &Parts, body: &Bytes, peer: SocketAddr) -> Reply {
    allow(&parts.method, std::slice::from_ref(verb))?;
    Ok(echo(parts, body, peer))
}

fn echo(parts: &Parts, body: &Bytes, peer: SocketAddr) -> Resp {
    let url = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let is_form = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    let form = if is_form {
        multi_map(url::form_urlencoded::parse(body))
    } else {
        Map::new()
    };
    let parsed = serde_json::from_slice::<Value>(body).unwrap_or(Value::Null);
    let doc = json!({
        "method": parts.method.as_str(),
        "url": url,
        "path": parts.uri.path(),
        "args": multi_map(query_pairs(parts)),
        "headers": headers_map(parts),
        "data": String::from_utf8_lossy(body),
        "json": parsed,
        "form": form,
        "cookies": cookies_map(parts),
        "origin": peer.ip().to_string(),
    });
    json_value(StatusCode::OK, &doc)
}

fn status(code: &str) -> Reply {
    let code = code
        .parse::<u16>()
        .ok()
        .filter(|c| (200..=599).contains(c))
        .ok_or_else(|| {
            error(
                StatusCode::BAD_REQUEST,
                "status code must be between 200 and 599",
            )
        })?;
    let status = StatusCode::from_u16(code)
        .map_err(|_| error(StatusCode::BAD_REQUEST, "invalid status code"))?;
    // These statuses must not carry a body; sending one would desynchronise keep-alive clients.
    let mut resp = if code == 204 || code == 304 {
        let mut r = Response::new(DemoBody::Full(None));
        *r.status_mut() = status;
        r
    } else {
        json_value(status, &json!({ "status": code }))
    };
    if (300..400).contains(&code) {
        resp.headers_mut()
            .insert(LOCATION, HeaderValue::from_static("/echo"));
    }
    if code == 401 {
        resp.headers_mut().insert(WWW_AUTHENTICATE, BASIC_REALM);
    }
    Ok(resp)
}

fn compressed(parts: &Parts, gzip: bool) -> Reply {
    let flag = if gzip { "gzipped" } else { "deflated" };
    let doc = json!({
        flag: true,
        "method": parts.method.as_str(),
        "headers": headers_map(parts),
    });
    let raw = serde_json::to_vec(&doc).map_err(|_| internal_error())?;
    let encoded = if gzip {
        let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
        enc.write_all(&raw).and_then(|()| enc.finish())
    } else {
        // "deflate" on the web means the zlib-wrapped stream, which is what clients decode.
        let mut enc = ZlibEncoder::new(Vec::new(), Compression::fast());
        enc.write_all(&raw).and_then(|()| enc.finish())
    }
    .map_err(|_| internal_error())?;
    let mut resp = json_bytes(StatusCode::OK, Bytes::from(encoded));
    resp.headers_mut().insert(
        http::header::CONTENT_ENCODING,
        HeaderValue::from_static(if gzip { "gzip" } else { "deflate" }),
    );
    Ok(resp)
}

fn redirect(n: &str, base: &str, route: &str) -> Reply {
    let n = parse_num::<u32>(n, "invalid redirect count")?;
    if n == 0 {
        return Ok(json_value(StatusCode::OK, &json!({ "redirected": true })));
    }
    redirect_response(StatusCode::FOUND, &format!("{base}/{route}/{}", n - 1))
}

fn redirect_to(parts: &Parts) -> Reply {
    let mut target = None;
    let mut code = None;
    for (k, v) in query_pairs(parts) {
        match k.as_ref() {
            "url" => target = Some(v.into_owned()),
            "status_code" => code = v.parse::<u16>().ok(),
            _ => {}
        }
    }
    let target =
        target.ok_or_else(|| error(StatusCode::BAD_REQUEST, "missing url query parameter"))?;
    let status = code
        .filter(|c| (300..400).contains(c))
        .and_then(|c| StatusCode::from_u16(c).ok())
        .unwrap_or(StatusCode::FOUND);
    redirect_response(status, &target)
}

fn redirect_response(status: StatusCode, location: &str) -> Reply {
    let location = HeaderValue::from_str(location)
        .map_err(|_| error(StatusCode::BAD_REQUEST, "invalid redirect location"))?;
    let mut resp = json_value(
        status,
        &json!({ "location": location.to_str().unwrap_or("") }),
    );
    resp.headers_mut().insert(LOCATION, location);
    Ok(resp)
}

/// "scheme://host" as the client addressed us, for absolute redirects.
fn origin(st: &State, parts: &Parts) -> String {
    let scheme = if st.tls { "https" } else { "http" };
    let host = parts
        .headers
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| parts.uri.authority().map(|a| a.to_string()))
        .unwrap_or_else(|| st.addr.to_string());
    format!("{scheme}://{host}")
}

fn set_cookies(cookies: impl Iterator<Item = String>) -> Reply {
    let mut resp = redirect_response(StatusCode::FOUND, "/cookies")?;
    for cookie in cookies {
        let value = HeaderValue::from_str(&cookie)
            .map_err(|_| error(StatusCode::BAD_REQUEST, "invalid cookie"))?;
        resp.headers_mut().append(SET_COOKIE, value);
    }
    Ok(resp)
}

fn basic_auth(parts: &Parts, user: &str, passwd: &str) -> Reply {
    let supplied = parts
        .headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .and_then(|(_, b64)| {
            base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .ok()
        });
    let expected = format!("{user}:{passwd}");
    if supplied.as_deref() == Some(expected.as_bytes()) {
        return Ok(json_value(
            StatusCode::OK,
            &json!({ "authenticated": true, "user": user }),
        ));
    }
    let mut resp = json_value(StatusCode::UNAUTHORIZED, &json!({ "authenticated": false }));
    resp.headers_mut().insert(WWW_AUTHENTICATE, BASIC_REALM);
    Err(resp)
}

fn response_headers(parts: &Parts) -> Reply {
    let pairs: Vec<(String, String)> = query_pairs(parts)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let doc = multi_map(
        pairs
            .iter()
            .map(|(k, v)| (Cow::Borrowed(k.as_str()), Cow::Borrowed(v.as_str()))),
    );
    let mut resp = json_value(StatusCode::OK, &Value::Object(doc));
    let mut seen: Vec<HeaderName> = Vec::new();
    for (k, v) in &pairs {
        let name = HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| error(StatusCode::BAD_REQUEST, "invalid header name"))?;
        let value = HeaderValue::from_str(v)
            .map_err(|_| error(StatusCode::BAD_REQUEST, "invalid header value"))?;
        // The first occurrence replaces our own default (e.g. Content-Type); repeats add lines.
        if seen.contains(&name) {
            resp.headers_mut().append(name, value);
        } else {
            resp.headers_mut().insert(name.clone(), value);
            seen.push(name);
        }
    }
    Ok(resp)
}

fn query_pairs(parts: &Parts) -> url::form_urlencoded::Parse<'_> {
    url::form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
}

/// Builds `{k: v}` with repeated keys collected into `[v1, v2, ...]`.
fn multi_map<'a>(pairs: impl Iterator<Item = (Cow<'a, str>, Cow<'a, str>)>) -> Map<String, Value> {
    let mut map = Map::new();
    for (k, v) in pairs {
        match map.get_mut(k.as_ref()) {
            Some(Value::Array(list)) => list.push(Value::String(v.into_owned())),
            Some(existing) => {
                let first = existing.take();
                *existing = Value::Array(vec![first, Value::String(v.into_owned())]);
            }
            None => {
                map.insert(k.into_owned(), Value::String(v.into_owned()));
            }
        }
    }
    map
}

fn headers_map(parts: &Parts) -> Map<String, Value> {
    let mut map = Map::new();
    for (name, value) in &parts.headers {
        let value = String::from_utf8_lossy(value.as_bytes());
        match map.get_mut(name.as_str()) {
            Some(Value::String(joined)) => {
                joined.push_str(", ");
                joined.push_str(&value);
            }
            _ => {
                map.insert(name.as_str().to_string(), Value::String(value.into_owned()));
            }
        }
    }
    map
}

pub(super) fn cookies_map(parts: &Parts) -> Map<String, Value> {
    let mut map = Map::new();
    for header in parts.headers.get_all(COOKIE) {
        let Ok(header) = header.to_str() else {
            continue;
        };
        for pair in header.split(';') {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let name = name.trim();
            if !name.is_empty() {
                let value = value.trim().trim_matches('"');
                map.insert(name.to_string(), Value::String(value.to_string()));
            }
        }
    }
    map
}

/// Decodes %XX escapes in a path segment; malformed escapes are kept literally.
pub(super) fn percent_decode(segment: &str) -> String {
    if !segment.contains('%') {
        return segment.to_string();
    }
    fn hex(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            b'A'..=b'F' => Some(b - b'A' + 10),
            _ => None,
        }
    }
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            if let (Some(hi), Some(lo)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            ) {
                out.push(hi << 4 | lo);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_num<T: std::str::FromStr>(s: &str, what: &str) -> Result<T, Resp> {
    s.parse::<T>()
        .map_err(|_| error(StatusCode::BAD_REQUEST, what))
}

/// 405 unless the method is listed; GET also admits HEAD, whose body hyper drops.
pub(super) fn allow(method: &Method, allowed: &[Method]) -> Result<(), Resp> {
    let get = allowed.contains(&Method::GET);
    if allowed.contains(method) || (get && method == Method::HEAD) {
        return Ok(());
    }
    let mut names: Vec<&str> = allowed.iter().map(Method::as_str).collect();
    if get {
        names.push("HEAD");
    }
    let mut resp = json_value(
        StatusCode::METHOD_NOT_ALLOWED,
        &json!({ "error": "method not allowed", "method": method.as_str() }),
    );
    if let Ok(value) = HeaderValue::from_str(&names.join(", ")) {
        resp.headers_mut().insert(ALLOW, value);
    }
    Err(resp)
}

pub(super) fn json_value<T: serde::Serialize + ?Sized>(status: StatusCode, doc: &T) -> Resp {
    match serde_json::to_vec(doc) {
        Ok(body) => json_bytes(status, Bytes::from(body)),
        Err(_) => internal_error(),
    }
}

fn json_bytes(status: StatusCode, body: Bytes) -> Resp {
    let mut resp = Response::new(DemoBody::full(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(CONTENT_TYPE, APPLICATION_JSON);
    resp
}

pub(super) fn error(status: StatusCode, message: &str) -> Resp {
    json_value(status, &json!({ "error": message }))
}

fn not_found(path: &str) -> Resp {
    json_value(
        StatusCode::NOT_FOUND,
        &json!({ "error": "not found", "path": path }),
    )
}

fn too_large() -> Resp {
    let mut resp = error(
        StatusCode::PAYLOAD_TOO_LARGE,
        "request body larger than 16 MB",
    );
    // The rest of the oversized body is never read, so the connection cannot be reused.
    resp.headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    resp
}

pub(super) fn internal_error() -> Resp {
    json_bytes(
        StatusCode::INTERNAL_SERVER_ERROR,
        Bytes::from_static(br#"{"error":"internal server error"}"#),
    )
}

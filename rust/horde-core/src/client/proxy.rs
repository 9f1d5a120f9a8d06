//! HTTP proxies as requests uses them: which proxy a URL goes through (requests' `select_proxy`
//! over its proxies mapping, plus the environment's `*_proxy` variables unless `no_proxy` says
//! otherwise), absolute-form requests to a proxy for http:// URLs, and a CONNECT tunnel through
//! it for https:// ones. Only http:// proxies are spoken; any other scheme is refused when chosen.

use std::net::Ipv4Addr;

use base64::Engine as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::error::{from_io, ClientError, ErrorKind};
use super::Target;

/// A proxy's address and the credentials its URL carried.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proxy {
    /// As written in the URL: IPv6 literals keep their brackets.
    pub host: String,
    pub port: u16,
    /// `Basic ...` from `user:password@` in the proxy's URL.
    pub authorization: Option<String>,
}

impl Proxy {
    /// Parses a proxy URL as requests does: a URL without a scheme is an http:// one, and the
    /// port defaults to 80. Credentials are percent-decoded into a Proxy-Authorization value.
    pub fn parse(url: &str) -> Result<Proxy, ClientError> {
        let with_scheme = if url.contains("://") {
            url.to_owned()
        } else {
            format!("http://{url}")
        };
        let parsed =
            url::Url::parse(&with_scheme).map_err(|e| invalid_proxy(url, &e.to_string()))?;
        if parsed.scheme() != "http" {
            return Err(ClientError::new(
                ErrorKind::InvalidUrl,
                format!(
                    "Unsupported proxy {url:?}: horde speaks to http:// proxies only (scheme {:?})",
                    parsed.scheme()
                ),
            ));
        }
        let host = match parsed.host() {
            Some(url::Host::Ipv6(ip)) => format!("[{ip}]"),
            Some(host) => host.to_string(),
            None => return Err(invalid_proxy(url, "no host")),
        };
        if host.is_empty() {
            return Err(invalid_proxy(url, "no host"));
        }
        let authorization = if parsed.username().is_empty() && parsed.password().is_none() {
            None
        } else {
            let decode = |s: &str| {
                percent_encoding_decode(s).map_err(|_| invalid_proxy(url, "bad credentials"))
            };
            let user = decode(parsed.username())?;
            let password = decode(parsed.password().unwrap_or(""))?;
            let token = base64::engine::general_purpose::STANDARD
                .encode([user.as_slice(), b":", password.as_slice()].concat());
            Some(format!("Basic {token}"))
        };
        Ok(Proxy {
            host,
            port: parsed.port().unwrap_or(80),
            authorization,
        })
    }
}

/// requests' wording for a proxy URL it cannot use.
fn invalid_proxy(url: &str, why: &str) -> ClientError {
    ClientError::new(
        ErrorKind::InvalidUrl,
        format!("Please check proxy URL {url:?}. It is malformed and could be missing the host ({why})."),
    )
}

fn percent_encoding_decode(s: &str) -> Result<Vec<u8>, ()> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or(())?;
            let hex = std::str::from_utf8(hex).map_err(|_| ())?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| ())?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(out)
}

/// Keys of a proxies mapping and their proxies; None where a request's `None` takes a key away.
type Layer = Vec<(String, Option<Result<Proxy, ClientError>>)>;

/// The proxies one request may go through, as requests merges them: the request's `proxies`
/// over, when the session trusts the environment, the `*_proxy` variables (keyed by scheme;
/// unless `no_proxy` exempts the host), over the session's `proxies`. Mappings are keyed
/// `scheme://host`, `scheme`, `all://host` or `all`.
#[derive(Clone, Debug, Default)]
pub struct Proxies {
    request: Layer,
    environment: Layer,
    session: Layer,
    no_proxy: Option<String>,
}

impl Proxies {
    /// Each mapping takes keys to proxy URLs; a URL that cannot be used is an error only for
    /// the requests that would go through it, as in requests. A None in the request's mapping
    /// takes the key away from all three. `no_proxy` is the comma-separated list of hosts that
    /// bypass the environment's proxies (not the mappings': requests applies it to the
    /// environment's only).
    pub fn new(
        request: Vec<(String, Option<String>)>,
        environment: Vec<(String, String)>,
        session: Vec<(String, String)>,
        no_proxy: Option<String>,
    ) -> Proxies {
        let parse = |pairs: Vec<(String, Option<String>)>| -> Layer {
            pairs
                .into_iter()
                .map(|(key, url)| {
                    let proxy = url.filter(|u| !u.is_empty()).map(|u| Proxy::parse(&u));
                    (key.to_ascii_lowercase(), proxy)
                })
                .collect()
        };
        let given = |pairs: Vec<(String, String)>| {
            parse(
                pairs
                    .into_iter()
                    .filter(|(_, url)| !url.is_empty())
                    .map(|(k, url)| (k, Some(url)))
                    .collect(),
            )
        };
        Proxies {
            request: parse(request),
            environment: given(environment),
            session: given(session),
            no_proxy,
        }
    }

    /// The first proxy URL of the request's or the session's mapping that cannot be used, as
    /// an error.
    pub fn first_invalid(&self) -> Option<&ClientError> {
        self.request
            .iter()
            .chain(&self.session)
            .find_map(|(_, p)| p.as_ref()?.as_ref().err())
    }

    /// The proxy for `url`, None to go direct. The keys are tried in requests' order:
    /// `scheme://host`, `scheme`, `all://host`, `all`; for each, the request's mapping, the
    /// environment's (unless `no_proxy` exempts the host) and the session's, in that order.
    pub(super) fn select(&self, target: &Target<'_>) -> Result<Option<&Proxy>, ClientError> {
        let scheme = if target.origin.https { "https" } else { "http" };
        let host = target
            .origin
            .host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        let use_environment = !self.environment.is_empty() && !self.bypass(&host, target);
        let keys = [
            format!("{scheme}://{host}"),
            scheme.to_owned(),
            format!("all://{host}"),
            "all".to_owned(),
        ];
        for key in &keys {
            let found = find(&self.request, key)
                .or_else(|| {
                    use_environment
                        .then(|| find(&self.environment, key))
                        .flatten()
                })
                .or_else(|| find(&self.session, key));
            // A key the request took away is as if no mapping had it.
            if let Some(Some(proxy)) = found {
                return proxy.as_ref().map(Some).map_err(Clone::clone);
            }
        }
        Ok(None)
    }

    /// Whether `no_proxy` exempts the host from the environment's proxies: `*`, the host itself
    /// (with or without the port), a domain it is in (`example.com` and `.example.com` both
    /// cover `api.example.com`), or for an IPv4 address a CIDR block that holds it. Names
    /// compare without regard to case, as urllib's `proxy_bypass_environment` does.
    fn bypass(&self, host: &str, target: &Target<'_>) -> bool {
        let Some(no_proxy) = &self.no_proxy else {
            return false;
        };
        let with_port = format!("{host}:{}", target.origin.port);
        let ipv4 = host.parse::<Ipv4Addr>().ok();
        no_proxy
            .split(',')
            .map(|entry| entry.trim().to_ascii_lowercase())
            .filter(|entry| !entry.is_empty())
            .any(|entry| {
                if entry == "*" {
                    return true;
                }
                if let (Some(ip), Some(block)) = (ipv4, parse_cidr(&entry)) {
                    return in_block(ip, block);
                }
                let name = entry.trim_start_matches('.');
                let dotted = format!(".{name}");
                host == name
                    || with_port == name
                    || host.ends_with(&dotted)
                    || with_port.ends_with(&dotted)
            })
    }
}

fn find<'a>(layer: &'a Layer, key: &str) -> Option<&'a Option<Result<Proxy, ClientError>>> {
    layer.iter().find(|(k, _)| k == key).map(|(_, p)| p)
}

fn parse_cidr(entry: &str) -> Option<(Ipv4Addr, u32)> {
    let (address, bits) = entry.split_once('/')?;
    let bits: u32 = bits.parse().ok()?;
    (1..=32)
        .contains(&bits)
        .then_some(())
        .and(address.parse().ok().map(|a| (a, bits)))
}

fn in_block(ip: Ipv4Addr, (network, bits): (Ipv4Addr, u32)) -> bool {
    let mask = u32::MAX << (32 - bits);
    u32::from(ip) & mask == u32::from(network) & mask
}

/// Asks the proxy on `tcp` for a tunnel to `host:port` (CONNECT) and returns the stream once
/// the proxy agreed: what follows on it goes to the origin. A refusal fails as requests words
/// it ("Tunnel connection failed: 403 Forbidden").
pub(crate) async fn tunnel(
    mut tcp: TcpStream,
    authority: &str,
    proxy: &Proxy,
) -> Result<TcpStream, ClientError> {
    let mut request = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
    if let Some(auth) = &proxy.authorization {
        request.push_str("Proxy-Authorization: ");
        request.push_str(auth);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    tcp.write_all(request.as_bytes())
        .await
        .map_err(|e| from_io(&e, true))?;
    // The proxy answers with a head and, on success, nothing more until the client speaks (TLS
    // starts with the client's hello), so reading past the head cannot take the origin's bytes.
    let mut head = Vec::with_capacity(256);
    let mut chunk = [0u8; 1024];
    let (status, reason) = loop {
        let n = tcp.read(&mut chunk).await.map_err(|e| from_io(&e, true))?;
        if n == 0 {
            return Err(tunnel_failed(
                "the proxy closed the connection before answering CONNECT",
            ));
        }
        head.extend_from_slice(&chunk[..n]);
        let mut fields = [httparse::EMPTY_HEADER; 64];
        let mut response = httparse::Response::new(&mut fields);
        match response.parse(&head) {
            Ok(httparse::Status::Complete(_)) => {
                break (
                    response.code.unwrap_or(0),
                    response.reason.unwrap_or("").to_owned(),
                )
            }
            Ok(httparse::Status::Partial) if head.len() <= 64 * 1024 => continue,
            Ok(httparse::Status::Partial) => {
                return Err(tunnel_failed("the proxy's answer to CONNECT is too large"))
            }
            Err(e) => {
                return Err(tunnel_failed(&format!(
                    "the proxy's answer to CONNECT is not HTTP: {e}"
                )))
            }
        }
    };
    if !(200..300).contains(&status) {
        return Err(tunnel_failed(&format!("{status} {reason}")));
    }
    Ok(tcp)
}

/// The caller marks every failure of the tunnel as the proxy's.
fn tunnel_failed(why: &str) -> ClientError {
    ClientError::new(
        ErrorKind::ProxyTunnel,
        format!("Tunnel connection failed: {why}"),
    )
}

#[cfg(test)]
mod tests {
    use super::{Proxies, Proxy};
    use crate::client::Target;

    fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// A request's proxies (`explicit`) and the environment's, the session having none.
    fn proxies(explicit: &[(&str, &str)], env: &[(&str, &str)], no_proxy: Option<&str>) -> Proxies {
        let request = owned(explicit)
            .into_iter()
            .map(|(k, v)| (k, Some(v)))
            .collect();
        Proxies::new(request, owned(env), Vec::new(), no_proxy.map(str::to_owned))
    }

    fn chosen(p: &Proxies, url: &str) -> Option<String> {
        let target = Target::parse(url).unwrap();
        p.select(&target)
            .unwrap()
            .map(|p| format!("{}:{}", p.host, p.port))
    }

    #[test]
    fn proxy_urls_parse_as_requests_reads_them() {
        let p = Proxy::parse("http://u%40x:p%3Aw@127.0.0.1:3128").unwrap();
        assert_eq!((p.host.as_str(), p.port), ("127.0.0.1", 3128));
        // base64("u@x:p:w")
        assert_eq!(p.authorization.as_deref(), Some("Basic dUB4OnA6dw=="));
        let bare = Proxy::parse("proxy.local:8080").unwrap();
        assert_eq!(
            (bare.host.as_str(), bare.port, bare.authorization),
            ("proxy.local", 8080, None)
        );
        assert_eq!(Proxy::parse("http://[::1]").unwrap().host, "[::1]");
        assert_eq!(Proxy::parse("http://p").unwrap().port, 80);
        for bad in [
            "socks5://127.0.0.1:1080",
            "https://p:443",
            "http://",
            "http://:80",
        ] {
            assert!(Proxy::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn keys_are_tried_in_requests_order() {
        let p = proxies(
            &[
                ("all", "http://all:1"),
                ("all://special", "http://all-special:1"),
                ("https", "http://https:1"),
                ("http://special", "http://http-special:1"),
            ],
            &[],
            None,
        );
        assert_eq!(
            chosen(&p, "http://special/x").as_deref(),
            Some("http-special:1")
        );
        assert_eq!(chosen(&p, "https://special/x").as_deref(), Some("https:1"));
        assert_eq!(chosen(&p, "http://other/x").as_deref(), Some("all:1"));
        assert_eq!(
            chosen(&p, "http://SPECIAL:8080/").as_deref(),
            Some("http-special:1")
        );
        let only_https = proxies(&[("https", "http://h:1")], &[], None);
        assert_eq!(chosen(&only_https, "http://a/"), None);
    }

    #[test]
    fn environment_fills_in_unless_no_proxy_exempts_the_host() {
        let env = [("http", "http://env:1"), ("https", "http://env:2")];
        let p = proxies(
            &[("https", "http://mine:3")],
            &env,
            Some("localhost,.internal.example, 10.0.0.0/8,api.example.com:8443"),
        );
        assert_eq!(chosen(&p, "http://a.com/").as_deref(), Some("env:1"));
        // An explicit proxy beats the environment's, and no_proxy does not apply to it.
        assert_eq!(chosen(&p, "https://a.com/").as_deref(), Some("mine:3"));
        assert_eq!(chosen(&p, "https://localhost/").as_deref(), Some("mine:3"));
        for exempt in [
            "http://localhost:8080/",
            "http://LocalHost/",
            "http://x.internal.example/",
            "http://internal.example/",
            "http://10.1.2.3/",
            "http://api.example.com:8443/",
        ] {
            assert_eq!(chosen(&p, exempt), None, "{exempt}");
        }
        for proxied in [
            "http://11.0.0.1/",
            "http://api.example.com/",
            "http://notlocalhost/",
        ] {
            assert_eq!(chosen(&p, proxied).as_deref(), Some("env:1"), "{proxied}");
        }
        let everything = proxies(&[], &env, Some("*"));
        assert_eq!(chosen(&everything, "http://a.com/"), None);
    }

    #[test]
    fn an_unusable_proxy_fails_only_the_requests_it_would_carry() {
        let p = proxies(&[("https", "socks5://s:1080")], &[], None);
        assert!(p.first_invalid().is_some());
        assert_eq!(chosen(&p, "http://a/"), None);
        let target = Target::parse("https://a/").unwrap();
        assert!(p.select(&target).is_err());
    }

    #[test]
    fn the_environment_beats_the_session_and_the_request_beats_both() {
        // requests' merge: the request's proxies, then the environment's, then the session's.
        let env = owned(&[("http", "http://env:1")]);
        let session = owned(&[("http", "http://session:2"), ("https", "http://session:3")]);
        let p = Proxies::new(Vec::new(), env.clone(), session.clone(), None);
        assert_eq!(chosen(&p, "http://a/").as_deref(), Some("env:1"));
        assert_eq!(chosen(&p, "https://a/").as_deref(), Some("session:3"));
        // no_proxy exempts the host from the environment's proxies only.
        let p = Proxies::new(Vec::new(), env.clone(), session.clone(), Some("a".into()));
        assert_eq!(chosen(&p, "http://a/").as_deref(), Some("session:2"));
        let request = vec![("http".to_owned(), Some("http://request:4".to_owned()))];
        let p = Proxies::new(request, env.clone(), session.clone(), None);
        assert_eq!(chosen(&p, "http://a/").as_deref(), Some("request:4"));
        // A None in the request's mapping takes the key from all of them; later keys still count.
        let request = vec![("http".to_owned(), None)];
        let p = Proxies::new(request.clone(), env.clone(), session.clone(), None);
        assert_eq!(chosen(&p, "http://a/"), None);
        let mut with_all = session;
        with_all.push(("all".to_owned(), "http://all:5".to_owned()));
        let p = Proxies::new(request, env, with_all, None);
        assert_eq!(chosen(&p, "http://a/").as_deref(), Some("all:5"));
    }
}

//! A session's idle keep-alive connections. A session usually talks to one origin at a time, so
//! the pool is a short list scanned linearly instead of a hash map keyed by owned strings.

use super::h1::Conn;
use super::proxy::Proxy;

/// Where a connection goes: scheme, host and port, as in the URL (borrowed from it), and the
/// proxy whose tunnel it passes through, if any.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Origin<'a> {
    pub https: bool,
    /// As written in the URL: IPv6 literals keep their brackets.
    pub host: &'a str,
    pub port: u16,
    pub via: Option<&'a Proxy>,
}

/// The idle connections to one origin.
struct Idle {
    https: bool,
    host: String,
    port: u16,
    via: Option<Proxy>,
    conns: Vec<Conn>,
}

impl Idle {
    fn is_for(&self, origin: &Origin<'_>) -> bool {
        self.https == origin.https
            && self.port == origin.port
            && self.host == origin.host
            && self.via.as_ref() == origin.via
    }
}

/// Idle connections of one session. Most sessions hold one origin with one connection.
#[derive(Default)]
pub(crate) struct Pool {
    idle: Vec<Idle>,
}

/// Idle connections kept per origin; more than this are closed when returned.
const MAX_IDLE_PER_ORIGIN: usize = 32;

impl Pool {
    /// An idle connection to the origin, if there is one (the server may have closed it since).
    pub fn checkout(&mut self, origin: &Origin<'_>) -> Option<Conn> {
        self.idle.iter_mut().find(|i| i.is_for(origin))?.conns.pop()
    }

    /// Keeps a connection that can take another request.
    pub fn checkin(&mut self, origin: &Origin<'_>, conn: Conn) {
        if let Some(idle) = self.idle.iter_mut().find(|i| i.is_for(origin)) {
            if idle.conns.len() < MAX_IDLE_PER_ORIGIN {
                idle.conns.push(conn);
            }
            return;
        }
        self.idle.push(Idle {
            https: origin.https,
            host: origin.host.to_owned(),
            port: origin.port,
            via: origin.via.cloned(),
            conns: vec![conn],
        });
    }

    pub fn clear(&mut self) {
        self.idle.clear();
    }
}

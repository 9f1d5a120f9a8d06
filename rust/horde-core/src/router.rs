//! The master's side of Locust's master/worker protocol: a ZeroMQ ROUTER socket that answers the
//! workers' heartbeats and merges their stats reports itself, and hands every other message to the
//! master's Python code.
//!
//! At a thousand workers a master gets a thousand heartbeats a second and a report from each
//! worker every three seconds. Handled in Python, each costs a wake-up of Python's messaging
//! thread, the GIL and a decode; here they cost a decode and a lock. Python still owns the rules
//! that change a run (who is a worker, who is missing, what to spawn): it tells the router which
//! workers it knows (`add_worker`, `set_live`, `remove_worker`), reads when each was last heard
//! from (`liveness`), and gets every message that may matter to it (`take`): a heartbeat whose
//! state changed, the first one over the CPU threshold, one from a worker it does not count live,
//! a report whose user counts changed, and everything else.
//!
//! `serve` runs on whatever tokio runtime the caller drives; `Router` is the handle shared with it.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Deserialize;
use tokio::sync::mpsc;
use zeromq::{RouterSocket, Socket, SocketRecv, SocketSend, ZmqMessage};

use crate::lock;
use crate::locust::decode_stats_message;
use crate::stats::RequestStats;

/// What the router hands to Python.
#[derive(Debug)]
pub enum Inbound {
    /// A message to decode and handle. `answered`: a heartbeat the router has answered and noted
    /// already, passed on for what Python does with it (a state change, the CPU warning,
    /// `heartbeat_sent` listeners).
    Message {
        addr: String,
        payload: Bytes,
        answered: bool,
    },
    /// A stats report merged into the statistics: the worker's per-class user counts when they
    /// changed, and the whole message when `worker_report` has listeners.
    Report {
        node_id: String,
        counts: Option<BTreeMap<String, i64>>,
        payload: Option<Bytes>,
    },
    /// Frames that are not a message (Locust's `RPCReceiveError`); `addr` when the sender is known.
    Error { addr: Option<String>, text: String },
}

/// A worker as the router knows it.
struct Worker {
    /// Counted live by Python: its heartbeats are answered here. A missing worker's are passed on,
    /// since Python decides whether it rejoins.
    live: bool,
    last_heartbeat: Instant,
    /// Heard from since the last `liveness` call.
    fresh: bool,
    cpu: f64,
    memory: Option<i64>,
    /// The state its last heartbeat gave.
    state: String,
    cpu_warned: bool,
    counts: Option<BTreeMap<String, i64>>,
    /// The answer to its heartbeats, encoded once.
    reply: Bytes,
}

/// One worker's liveness, as `Router::liveness` gives it.
pub struct Liveness {
    pub node_id: String,
    /// Seconds since its last heartbeat.
    pub silent: f64,
    pub cpu: f64,
    pub memory: Option<i64>,
}

enum Command {
    Send(Bytes, Bytes),
    Close(Duration),
}

/// Messages for Python and the pipe that wakes it: one byte when the first one arrives.
struct Inbox {
    items: Vec<Inbound>,
    signalled: bool,
}

/// How long a message to one worker may wait for room in its queue.
const SEND_WAIT: Duration = Duration::from_millis(50);
/// The pause after each batch of messages (see `serve`).
const NAP: Duration = Duration::from_millis(50);

/// The handle to a router that `serve` runs: shared by the master's Python side and the loop.
pub struct Router {
    inbox: Mutex<Inbox>,
    workers: Mutex<HashMap<String, Worker>>,
    stats: Mutex<Option<Arc<RequestStats>>>,
    forward_heartbeats: AtomicBool,
    forward_reports: AtomicBool,
    cpu_threshold: f64,
    commands: mpsc::UnboundedSender<Command>,
    wake_write: UnixStream,
    wake_read: UnixStream,
}

/// What `serve` needs besides the router.
pub struct Serving {
    commands: mpsc::UnboundedReceiver<Command>,
}

impl Router {
    /// A router (and the receiving end its `serve` needs). A heartbeat reporting a CPU usage over
    /// `cpu_threshold` percent is passed on the first time for each worker.
    pub fn new(cpu_threshold: f64) -> io::Result<(Arc<Router>, Serving)> {
        let (wake_write, wake_read) = UnixStream::pair()?;
        wake_write.set_nonblocking(true)?;
        wake_read.set_nonblocking(true)?;
        let (tx, rx) = mpsc::unbounded_channel();
        let router = Router {
            inbox: Mutex::new(Inbox {
                items: Vec::new(),
                signalled: false,
            }),
            workers: Mutex::new(HashMap::new()),
            stats: Mutex::new(None),
            forward_heartbeats: AtomicBool::new(false),
            forward_reports: AtomicBool::new(false),
            cpu_threshold,
            commands: tx,
            wake_write,
            wake_read,
        };
        Ok((Arc::new(router), Serving { commands: rx }))
    }

    /// The descriptor that becomes readable when `take` has something.
    pub fn wake_fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        self.wake_read.as_raw_fd()
    }

    /// What arrived for Python since the last call.
    pub fn take(&self) -> Vec<Inbound> {
        let mut inbox = lock(&self.inbox);
        inbox.signalled = false;
        let mut sink = [0u8; 64];
        while matches!((&self.wake_read).read(&mut sink), Ok(n) if n > 0) {}
        std::mem::take(&mut inbox.items)
    }

    /// Queues `payload` for the worker `node_id`; returns at once.
    pub fn send(&self, node_id: Bytes, payload: Bytes) {
        let _ = self.commands.send(Command::Send(node_id, payload));
    }

    /// Sends what is queued, waits up to `linger` for it to leave, and ends `serve`.
    pub fn close(&self, linger: Duration) {
        let _ = self.commands.send(Command::Close(linger));
    }

    /// Reports are merged into `stats` from now on (until then they go to Python).
    pub fn merge_into(&self, stats: Arc<RequestStats>) {
        *lock(&self.stats) = Some(stats);
    }

    /// Whether every heartbeat (`heartbeat_sent` listeners) and every whole report
    /// (`worker_report` listeners) go to Python too.
    pub fn set_forwarding(&self, heartbeats: bool, reports: bool) {
        self.forward_heartbeats.store(heartbeats, Ordering::Relaxed);
        self.forward_reports.store(reports, Ordering::Relaxed);
    }

    /// A worker Python counts (live), in `state`, heard from now.
    pub fn add_worker(&self, node_id: &str, state: &str) {
        let reply = rmp_serde::to_vec(&("heartbeat", (), node_id)).unwrap_or_default();
        lock(&self.workers).insert(
            node_id.to_owned(),
            Worker {
                live: true,
                last_heartbeat: Instant::now(),
                fresh: false,
                cpu: 0.0,
                memory: None,
                state: state.to_owned(),
                cpu_warned: false,
                counts: None,
                reply: Bytes::from(reply),
            },
        );
    }

    /// Python marked the worker missing (`live` false) or took it back (true, heard from now).
    pub fn set_live(&self, node_id: &str, live: bool, state: &str) {
        if let Some(w) = lock(&self.workers).get_mut(node_id) {
            w.live = live;
            w.state = state.to_owned();
            if live {
                w.last_heartbeat = Instant::now();
            }
        }
    }

    pub fn remove_worker(&self, node_id: &str) {
        lock(&self.workers).remove(node_id);
    }

    /// The live workers heard from since the last call.
    pub fn liveness(&self) -> Vec<Liveness> {
        let now = Instant::now();
        let mut workers = lock(&self.workers);
        let mut out = Vec::new();
        for (id, w) in workers.iter_mut() {
            if w.fresh && w.live {
                w.fresh = false;
                out.push(Liveness {
                    node_id: id.clone(),
                    silent: now.duration_since(w.last_heartbeat).as_secs_f64(),
                    cpu: w.cpu,
                    memory: w.memory,
                });
            }
        }
        out
    }

    /// Tells Python that the socket failed (it logs the error).
    pub fn report_failure(&self, text: &str) {
        self.push(Inbound::Error {
            addr: None,
            text: text.to_owned(),
        });
    }

    /// Hands a message to Python to decode and handle.
    fn pass_on(&self, addr: String, payload: Bytes) {
        self.push(Inbound::Message {
            addr,
            payload,
            answered: false,
        });
    }

    fn push(&self, item: Inbound) {
        let mut inbox = lock(&self.inbox);
        inbox.items.push(item);
        if !inbox.signalled {
            inbox.signalled = true;
            let _ = (&self.wake_write).write(b"x");
        }
    }

    /// One message from a worker: frames[0] is its identity.
    /// Returns the heartbeat answer to send, if any.
    fn on_message(&self, message: ZmqMessage) -> Option<(Bytes, Bytes)> {
        let frames = message.into_vecdeque();
        let Ok(addr) = std::str::from_utf8(&frames[0]) else {
            self.push(Inbound::Error {
                addr: None,
                text: "ZMQ interrupted or corrupted message".into(),
            });
            return None;
        };
        let addr = addr.to_owned();
        if frames.len() != 2 {
            self.push(Inbound::Error {
                addr: Some(addr),
                text: format!("a message of {} frames", frames.len()),
            });
            return None;
        }
        let payload = frames[1].clone();
        match peek_type(&payload) {
            Some(b"heartbeat") => self.on_heartbeat(addr, payload),
            Some(b"stats") => {
                self.on_stats(addr, payload);
                None
            }
            _ => {
                self.pass_on(addr, payload);
                None
            }
        }
    }

    fn on_heartbeat(&self, addr: String, payload: Bytes) -> Option<(Bytes, Bytes)> {
        let decoded: Result<(String, Heartbeat, String), _> = rmp_serde::from_slice(&payload);
        let Ok((_, beat, node_id)) = decoded else {
            // Python decodes it again and says what is wrong with it.
            self.pass_on(addr, payload);
            return None;
        };
        let mut workers = lock(&self.workers);
        let Some(w) = workers.get_mut(&node_id).filter(|w| w.live) else {
            drop(workers);
            self.pass_on(addr, payload);
            return None;
        };
        w.last_heartbeat = Instant::now();
        w.fresh = true;
        let cpu = beat.current_cpu_usage.unwrap_or(0.0);
        w.cpu = cpu;
        if beat.current_memory_usage.is_some() {
            w.memory = beat.current_memory_usage;
        }
        let mut pass_on = self.forward_heartbeats.load(Ordering::Relaxed);
        if w.state != beat.state {
            w.state = beat.state;
            pass_on = true;
        }
        if cpu > self.cpu_threshold && !w.cpu_warned {
            w.cpu_warned = true;
            pass_on = true;
        }
        let reply = (Bytes::from(node_id.into_bytes()), w.reply.clone());
        drop(workers);
        if pass_on {
            self.push(Inbound::Message {
                addr,
                payload,
                answered: true,
            });
        }
        Some(reply)
    }

    fn on_stats(&self, addr: String, payload: Bytes) {
        let stats = lock(&self.stats).clone();
        let forward_all = self.forward_reports.load(Ordering::Relaxed);
        let Some(stats) = stats else {
            self.pass_on(addr, payload);
            return;
        };
        // A report is data from the network: a bug it triggers must not take the master down.
        let decoded = std::panic::catch_unwind(|| decode_stats_message(&payload))
            .unwrap_or_else(|_| Err("the decoder failed".into()));
        let (node_id, report) = match decoded {
            Ok(decoded) => decoded,
            Err(e) => {
                self.push(Inbound::Error {
                    addr: Some(addr),
                    text: format!("a stats report that cannot be read ({e})"),
                });
                return;
            }
        };
        let changed_counts = {
            let mut workers = lock(&self.workers);
            let Some(w) = workers.get_mut(&node_id) else {
                // Not a worker Python knows: it says so and discards the report, as Locust does.
                drop(workers);
                self.pass_on(addr, payload);
                return;
            };
            match &report.user_classes_count {
                Some(counts) if w.counts.as_ref() != Some(counts) => {
                    w.counts = Some(counts.clone());
                    Some(counts.clone())
                }
                _ => None,
            }
        };
        let merged =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| stats.merge_report(&report)));
        if merged.is_err() {
            self.push(Inbound::Error {
                addr: Some(addr),
                text: "a stats report that cannot be merged".into(),
            });
            return;
        }
        if changed_counts.is_some() || forward_all {
            self.push(Inbound::Report {
                node_id,
                counts: changed_counts.or(report.user_classes_count),
                payload: forward_all.then_some(payload),
            });
        }
    }
}

/// The part of a heartbeat the router reads (Locust's worker sends these keys).
#[derive(Deserialize)]
struct Heartbeat {
    state: String,
    #[serde(default)]
    current_cpu_usage: Option<f64>,
    #[serde(default)]
    current_memory_usage: Option<i64>,
}

/// The type of an encoded message (`[type, data, node_id]`), read from its first bytes.
fn peek_type(payload: &[u8]) -> Option<&[u8]> {
    let mut rd = payload;
    if rmp::decode::read_array_len(&mut rd).ok()? != 3 {
        return None;
    }
    let len = rmp::decode::read_str_len(&mut rd).ok()? as usize;
    rd.get(..len)
}

/// Serves `listener` as a ROUTER socket until `Router::close` (or until the router is dropped).
pub async fn serve(
    router: Arc<Router>,
    serving: Serving,
    listener: std::net::TcpListener,
) -> io::Result<()> {
    let Serving { mut commands } = serving;
    let mut socket = RouterSocket::new();
    socket
        .bind_listener(listener)
        .await
        .map_err(|e| io::Error::other(e.to_string()))?;
    let (mut tx, mut rx) = socket.split();
    loop {
        tokio::select! {
            command = commands.recv() => {
                let Some(command) = command else {
                    return Ok(());
                };
                if run_commands(command, &mut commands, &mut tx).await {
                    return Ok(());
                }
            }
            received = rx.recv() => match received {
                Ok(message) => {
                    if let Some((id, reply)) = router.on_message(message) {
                        send(&mut tx, id, reply).await;
                    }
                    // Everything else that has arrived, then the answers go out, then a nap.
                    while let Some(Ok(message)) = poll_once(rx.recv()).await {
                        if let Some((id, reply)) = router.on_message(message) {
                            send(&mut tx, id, reply).await;
                        }
                    }
                    // What Python queued meanwhile (a thousand acks or spawns at once) goes
                    // out now, not one per nap.
                    if let Ok(command) = commands.try_recv() {
                        if run_commands(command, &mut commands, &mut tx).await {
                            return Ok(());
                        }
                    }
                    tokio::task::yield_now().await;
                    // The thread sleeps (this runtime serves nothing else): what arrives meanwhile
                    // is read in one go afterwards, where each message would otherwise wake the
                    // thread on its own. At a thousand workers that is about 20 wake-ups a second
                    // instead of 1,300, and heartbeats are answered at most this much later.
                    std::thread::sleep(NAP);
                }
                // A peer's broken connection (it is dropped) or no peers: nothing to hand on.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
        }
    }
}

/// Runs `first` and every command queued behind it. True when one was Close: what was queued
/// before it has gone out, and the caller stops serving.
async fn run_commands(
    first: Command,
    commands: &mut mpsc::UnboundedReceiver<Command>,
    tx: &mut zeromq::RouterSendHalf,
) -> bool {
    let mut next = Some(first);
    while let Some(command) = next {
        match command {
            Command::Send(id, payload) => send(tx, id, payload).await,
            Command::Close(linger) => {
                // What Python queued before closing still goes out (a quit to every worker).
                while let Ok(Command::Send(id, payload)) = commands.try_recv() {
                    send(tx, id, payload).await;
                }
                // Each worker's queue is written by a task of its own: give them a moment.
                tokio::time::sleep(linger.min(Duration::from_millis(200))).await;
                return true;
            }
        }
        next = commands.try_recv().ok();
    }
    false
}

/// Polls `future` once: its output if it is ready now.
async fn poll_once<F: Future>(future: F) -> Option<F::Output> {
    let mut future = std::pin::pin!(future);
    match std::future::poll_fn(|cx| Poll::Ready(future.as_mut().poll(cx))).await {
        Poll::Ready(output) => Some(output),
        Poll::Pending => None,
    }
}

async fn send(tx: &mut zeromq::RouterSendHalf, id: Bytes, payload: Bytes) {
    let mut message = ZmqMessage::from(payload);
    message.push_front(id);
    // Polled once first: a message almost always goes straight into the worker's queue, and a
    // thousand heartbeat answers a second then need no timer each.
    let mut sending = std::pin::pin!(tx.send(message));
    if poll_once(sending.as_mut()).await.is_none() {
        // A worker that went away or stopped reading loses the message rather than holding up
        // the others, as with ZeroMQ's ROUTER.
        let _ = tokio::time::timeout(SEND_WAIT, sending).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zeromq::DealerSocket;

    fn encode<T: serde::Serialize>(value: &T) -> Bytes {
        Bytes::from(rmp_serde::to_vec_named(value).unwrap())
    }

    async fn next(router: &Router) -> Vec<Inbound> {
        for _ in 0..500 {
            let items = router.take();
            if !items.is_empty() {
                return items;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("nothing arrived");
    }

    #[tokio::test]
    async fn heartbeats_are_answered_reports_merged_and_the_rest_passed_on() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (router, serving) = Router::new(90.0).unwrap();
        let stats = Arc::new(RequestStats::new());
        router.merge_into(stats.clone());
        tokio::spawn(serve(router.clone(), serving, listener));

        let mut options = zeromq::SocketOptions::default();
        options.peer_identity("w1".parse().unwrap());
        let mut dealer = DealerSocket::with_options(options);
        dealer
            .connect(&format!("tcp://127.0.0.1:{port}"))
            .await
            .unwrap();

        // Unknown to Python yet: passed on.
        dealer
            .send(ZmqMessage::from(encode(&("client_ready", "2.47.0", "w1"))))
            .await
            .unwrap();
        match &next(&router).await[..] {
            [Inbound::Message { addr, answered, .. }] => {
                assert_eq!(addr, "w1");
                assert!(!answered);
            }
            other => panic!("{other:?}"),
        }
        router.add_worker("w1", "ready");

        // A heartbeat in the known state: answered, nothing for Python.
        dealer
            .send(ZmqMessage::from(heartbeat("ready", 12.5)))
            .await
            .unwrap();
        let answer = tokio::time::timeout(Duration::from_secs(5), dealer.recv())
            .await
            .unwrap()
            .unwrap();
        let (kind, data, node): (String, Option<u8>, String) =
            rmp_serde::from_slice(answer.get(0).unwrap()).unwrap();
        assert_eq!(
            (kind.as_str(), data, node.as_str()),
            ("heartbeat", None, "w1")
        );
        assert!(router.take().is_empty());
        let live = router.liveness();
        assert_eq!(live.len(), 1);
        assert_eq!(live[0].cpu, 12.5);

        // A new state is passed on (answered already).
        dealer
            .send(ZmqMessage::from(heartbeat("running", 1.0)))
            .await
            .unwrap();
        match &next(&router).await[..] {
            [Inbound::Message { answered, .. }] => assert!(answered),
            other => panic!("{other:?}"),
        }

        // A report is merged; its user counts go to Python only when they change.
        for (round, want_counts) in [(0, true), (1, false)] {
            dealer.send(ZmqMessage::from(report(3))).await.unwrap();
            if want_counts {
                match &next(&router).await[..] {
                    [Inbound::Report {
                        node_id,
                        counts,
                        payload,
                    }] => {
                        assert_eq!(node_id, "w1");
                        assert_eq!(counts, &Some(BTreeMap::from([("U".to_owned(), 3)])));
                        assert!(payload.is_none());
                    }
                    other => panic!("{other:?}"),
                }
            }
            for _ in 0..500 {
                if stats.snapshot().total.num_requests == 5 * (round + 1) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            assert_eq!(stats.snapshot().total.num_requests, 5 * (round + 1));
        }
        assert!(router.take().is_empty());

        // Garbage in a stats message is an error for Python, and the statistics are untouched.
        dealer
            .send(ZmqMessage::from(Bytes::from_static(b"\x93\xa5stats\xc1")))
            .await
            .unwrap();
        match &next(&router).await[..] {
            [Inbound::Error { addr, .. }] => assert_eq!(addr.as_deref(), Some("w1")),
            other => panic!("{other:?}"),
        }
        assert_eq!(stats.snapshot().total.num_requests, 10);
    }

    fn report(users: i64) -> Bytes {
        #[derive(serde::Serialize)]
        struct Report {
            stats: Vec<crate::locust::EntryDict>,
            stats_total: crate::locust::EntryDict,
            errors: BTreeMap<String, crate::locust::ErrorDict>,
            user_classes_count: BTreeMap<String, i64>,
        }
        let mut total = crate::stats::StatsEntry::new_at("Aggregated", "", 1.0);
        total.num_requests = 5;
        encode(&(
            "stats",
            Report {
                stats: vec![],
                stats_total: crate::locust::EntryDict::from(&total),
                errors: BTreeMap::new(),
                user_classes_count: BTreeMap::from([("U".to_owned(), users)]),
            },
            "w1",
        ))
    }

    fn heartbeat(state: &str, cpu: f64) -> Bytes {
        #[derive(serde::Serialize)]
        struct Beat<'a> {
            state: &'a str,
            current_cpu_usage: f64,
            current_memory_usage: i64,
        }
        encode(&(
            "heartbeat",
            Beat {
                state,
                current_cpu_usage: cpu,
                current_memory_usage: 1000,
            },
            "w1",
        ))
    }
}

//! The engine alone, no Python: N sessions (one keep-alive connection each) loop GET on one URL
//! for a fixed time and log every request into RequestStats, as a user's requests are logged.
//! Prints one JSON line. benches/engine_vs_wrk.py runs it next to wrk.
//!
//!     engine_bench --url http://127.0.0.1:8080/ --connections 50 --duration 10 --threads 1

use std::sync::Arc;
use std::time::{Duration, Instant};

use horde_core::stats::now_epoch_secs;
use horde_core::{Request, RequestStats, Session, SessionConfig, UserKind};

fn arg(args: &[String], name: &str, default: &str) -> String {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| default.to_owned())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let url = arg(&args, "--url", "http://127.0.0.1:8080/");
    let connections: usize = arg(&args, "--connections", "50")
        .parse()
        .expect("--connections");
    let duration: f64 = arg(&args, "--duration", "10").parse().expect("--duration");
    let threads: usize = arg(&args, "--threads", "1").parse().expect("--threads");

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .expect("runtime");
    let stats = Arc::new(RequestStats::new());
    let deadline = Instant::now() + Duration::from_secs_f64(duration);
    let start = Instant::now();
    rt.block_on(async {
        let mut tasks = Vec::with_capacity(connections);
        for _ in 0..connections {
            let stats = stats.clone();
            let url = url.clone();
            tasks.push(tokio::spawn(async move {
                let session = Session::new(SessionConfig::default()).expect("session");
                while Instant::now() < deadline {
                    let result = session.execute(Request::get(url.as_str())).await;
                    let o = UserKind::HttpUser.outcome(&result, "/");
                    stats.record(&o.record("GET", "/"), now_epoch_secs());
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
    });
    let elapsed = start.elapsed().as_secs_f64();
    let snap = stats.snapshot();
    let total = &snap.total;
    println!(
        "{}",
        serde_json::json!({
            "requests": total.num_requests,
            "failures": total.num_failures,
            "seconds": elapsed,
            "rps": total.num_requests as f64 / elapsed,
            "p50_ms": total.get_response_time_percentile(0.5),
            "p99_ms": total.get_response_time_percentile(0.99),
            "max_ms": total.max_response_time,
        })
    );
}

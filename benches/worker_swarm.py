#!/usr/bin/env python3
"""Many simulated Locust 2.47 workers in one process, for loading a master (benches/distributed.py).

    python benches/worker_swarm.py --port P --workers N [--names 100] [--host 127.0.0.1]

Each worker is a DEALER socket that speaks what a real worker says to its master: `client_ready`
("2.47.0") until `ack`, then a `heartbeat` every second and a `stats` report of --names entries
every 3 s (Locust's StatsEntryDict deltas); it answers `spawn` with `spawning` and
`spawning_complete` and then reports the user counts it was given, as a real worker does. The
workers' timers are spread evenly over the second and over the 3 s. One loop serves every socket:
every TICK it sends what is due, then reads whatever the master sent (one poll with no wait), so
the swarm's cost stays flat whatever the master does.

Reads commands from stdin, one per line, and answers each with a JSON line on stdout:
  status  workers connected (acked), spawned, own CPU
  mark    the same plus, per worker, the heartbeat replies since the previous mark
  stop    prints a last status and exits
"""

from __future__ import annotations

import argparse
import heapq
import json
import resource
import sys
import threading
import time
import uuid

import msgpack
import zmq

VERSION = "2.47.0"
HEARTBEAT_INTERVAL = 1.0
REPORT_INTERVAL = 3.0
CONNECT_TIMEOUT = 5.0  # a real worker repeats client_ready this often until the ack
TICK = 0.01
_HB, _REPORT, _READY = 0, 1, 2


def _str(s: str) -> bytes:
    return msgpack.packb(s)


class Reports:
    """The bytes of a stats report's shared part (entries and total), built once per second: every
    worker reports the same figures, which costs the master as much to merge as different ones."""

    def __init__(self, names: int) -> None:
        self.names = names
        self._second = -1
        self._head = b""

    def head(self, now: float) -> bytes:
        second = int(now)
        if second != self._second:
            self._second = second
            self._head = self._build(now)
        return self._head

    def _build(self, now: float) -> bytes:
        second = int(now)
        # 30 requests per name in 3 s, spread over 9 buckets as a real run spreads its times.
        buckets = {2: 3, 3: 5, 5: 6, 8: 5, 10: 4, 12: 3, 20: 2, 30: 1, 40: 1}
        per_sec = {second - 2: 10, second - 1: 10, second: 10}
        entries = []
        for k in range(self.names):
            failures = 1 if k % 10 == 0 else 0
            entries.append(
                {
                    "name": f"/api/items/{k}",
                    "method": "GET" if k % 4 else "POST",
                    "last_request_timestamp": now - 0.01,
                    "start_time": now - REPORT_INTERVAL,
                    "num_requests": 30,
                    "num_none_requests": 0,
                    "num_failures": failures,
                    "total_response_time": 30 * 9.7,
                    "max_response_time": 41.3,
                    "min_response_time": 1.6,
                    "total_content_length": 30 * 1234,
                    "response_times": buckets,
                    "num_reqs_per_sec": per_sec,
                    "num_fail_per_sec": {second: failures} if failures else {},
                }
            )
        n = self.names
        failures_total = sum(e["num_failures"] for e in entries)
        total = {
            "name": "Aggregated",
            "method": "",
            "last_request_timestamp": now - 0.01,
            "start_time": now - REPORT_INTERVAL,
            "num_requests": 30 * n,
            "num_none_requests": 0,
            "num_failures": failures_total,
            "total_response_time": 30 * 9.7 * n,
            "max_response_time": 41.3,
            "min_response_time": 1.6,
            "total_content_length": 30 * 1234 * n,
            "response_times": {b: c * n for b, c in buckets.items()},
            "num_reqs_per_sec": {t: c * n for t, c in per_sec.items()},
            "num_fail_per_sec": {second: failures_total} if failures_total else {},
        }
        # The first keys of the report map (5 keys in all: the last two are per worker).
        return b"".join(
            [b"\x85", _str("stats"), msgpack.packb(entries), _str("stats_total"), msgpack.packb(total),
             _str("errors"), msgpack.packb({})]
        )  # fmt: skip


class Worker:
    __slots__ = ("index", "node_id", "sock", "acked", "spawned", "state", "counts", "replies", "ready_sent")

    def __init__(self, index: int, node_id: str, sock: zmq.Socket) -> None:
        self.index = index
        self.node_id = node_id
        self.sock = sock
        self.acked = False
        self.spawned = False
        self.state = "ready"
        self.counts: dict[str, int] = {}
        self.replies = 0
        self.ready_sent = 0.0


class Swarm:
    def __init__(self, host: str, port: int, count: int, names: int) -> None:
        self.ctx = zmq.Context(io_threads=1)
        self.ctx.set(zmq.MAX_SOCKETS, count + 64)
        self.reports = Reports(names)
        self.workers: list[Worker] = []
        self.poller = zmq.Poller()
        self.by_socket: dict[zmq.Socket, Worker] = {}
        self.timers: list[tuple[float, int, int]] = []
        self.started = time.monotonic()
        self.sent = {"heartbeat": 0, "stats": 0, "client_ready": 0, "other": 0}
        self.received: dict[str, int] = {}
        self.send_again = 0
        self.count = count
        self.host, self.port = host, port
        tag = uuid.uuid4().hex[:8]
        for i in range(count):
            sock = self.ctx.socket(zmq.DEALER)
            node_id = f"swarm-{tag}_{i:05d}"
            sock.setsockopt(zmq.IDENTITY, node_id.encode())
            sock.setsockopt(zmq.LINGER, 0)
            w = Worker(i, node_id, sock)
            self.workers.append(w)
            self.by_socket[sock] = w
            self.poller.register(sock, zmq.POLLIN)
        self.commands: list[str] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._read_stdin, daemon=True).start()
        self.mark_replies = [0] * count
        self.mark_time = time.monotonic()
        self.mark_cpu = self.cpu()

    # -- sending -------------------------------------------------------------------------------

    def _send(self, w: Worker, payload: bytes, kind: str) -> None:
        try:
            w.sock.send(payload, zmq.NOBLOCK)
            self.sent[kind] = self.sent.get(kind, 0) + 1
        except zmq.Again:
            self.send_again += 1

    def _msg(self, w: Worker, mtype: str, data) -> bytes:
        return msgpack.packb((mtype, data, w.node_id))

    def client_ready(self, w: Worker) -> None:
        w.ready_sent = time.monotonic()
        self._send(w, self._msg(w, "client_ready", VERSION), "client_ready")

    def heartbeat(self, w: Worker) -> None:
        data = {"state": w.state, "current_cpu_usage": 10.0, "current_memory_usage": 100_000_000}
        self._send(w, self._msg(w, "heartbeat", data), "heartbeat")

    def report(self, w: Worker) -> None:
        now = time.time()
        counts = w.counts
        payload = b"".join(
            [b"\x93", _str("stats"), self.reports.head(now), _str("user_classes_count"), msgpack.packb(counts),
             _str("user_count"), msgpack.packb(sum(counts.values())), msgpack.packb(w.node_id)]
        )  # fmt: skip
        self._send(w, payload, "stats")

    # -- receiving ------------------------------------------------------------------------------

    def on_message(self, w: Worker, raw: bytes) -> None:
        try:
            mtype, data, _node = msgpack.unpackb(raw, raw=False, strict_map_key=False)
        except Exception:
            mtype, data = "undecodable", None
        self.received[mtype] = self.received.get(mtype, 0) + 1
        if mtype == "heartbeat":
            w.replies += 1
        elif mtype == "ack":
            if not w.acked:
                w.acked = True
                now = time.monotonic()
                # Spread the timers: worker i beats at i/N of the second and reports at i/N of 3 s.
                frac = w.index / self.count
                base = now - (now % HEARTBEAT_INTERVAL)
                hb = base + frac * HEARTBEAT_INTERVAL
                while hb <= now:
                    hb += HEARTBEAT_INTERVAL
                rep = base + frac * REPORT_INTERVAL
                while rep <= now:
                    rep += REPORT_INTERVAL
                heapq.heappush(self.timers, (hb, w.index, _HB))
                heapq.heappush(self.timers, (rep, w.index, _REPORT))
        elif mtype == "spawn":
            self._send(w, self._msg(w, "spawning", None), "other")
            counts = data.get("user_classes_count") or {}
            w.counts = {str(k): int(v) for k, v in counts.items()}
            w.state = "running"
            w.spawned = True
            done = {"user_classes_count": w.counts, "user_count": sum(w.counts.values())}
            self._send(w, self._msg(w, "spawning_complete", done), "other")
        elif mtype == "stop":
            w.counts = {}
            w.state = "ready"
            self._send(w, self._msg(w, "client_stopped", None), "other")
            self.client_ready(w)
        # quit, spawning_complete, reconnect, custom messages: counted only.

    def drain(self) -> None:
        for sock, _ in self.poller.poll(0):
            w = self.by_socket[sock]
            while True:
                try:
                    raw = sock.recv(zmq.NOBLOCK)
                except zmq.Again:
                    break
                self.on_message(w, raw)

    # -- commands -------------------------------------------------------------------------------

    def _read_stdin(self) -> None:
        for line in sys.stdin:
            with self._lock:
                self.commands.append(line.strip())
        with self._lock:
            self.commands.append("stop")

    @staticmethod
    def cpu() -> float:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    def status(self, mark: bool) -> dict:
        now, cpu = time.monotonic(), self.cpu()
        out = {
            "t": now - self.started,
            "acked": sum(w.acked for w in self.workers),
            "spawned": sum(w.spawned for w in self.workers),
            "cpu_s": cpu,
            "sent": dict(self.sent),
            "received": dict(self.received),
            "send_again": self.send_again,
        }
        if mark:
            replies = [w.replies - self.mark_replies[w.index] for w in self.workers]
            out["window_s"] = now - self.mark_time
            out["window_cpu_s"] = cpu - self.mark_cpu
            out["replies"] = replies
            self.mark_replies = [w.replies for w in self.workers]
            self.mark_time, self.mark_cpu = now, cpu
        return out

    def handle_commands(self) -> bool:
        with self._lock:
            commands, self.commands = self.commands, []
        for cmd in commands:
            if cmd in ("status", "mark", "stop"):
                print(json.dumps(self.status(mark=cmd == "mark")), flush=True)
            if cmd == "stop":
                return False
        return True

    # -- the loop -------------------------------------------------------------------------------

    def run(self) -> None:
        # Connect in batches of 100 per tick, so the master does not get 1,000 handshakes at once.
        pending = list(self.workers)
        next_tick = time.monotonic()
        while True:
            if pending:
                batch, pending = pending[:100], pending[100:]
                for w in batch:
                    w.sock.connect(f"tcp://{self.host}:{self.port}")
                    self.client_ready(w)
            now = time.monotonic()
            while self.timers and self.timers[0][0] <= now:
                due, index, kind = heapq.heappop(self.timers)
                w = self.workers[index]
                if kind == _HB:
                    self.heartbeat(w)
                    heapq.heappush(self.timers, (due + HEARTBEAT_INTERVAL, index, _HB))
                else:
                    self.report(w)
                    heapq.heappush(self.timers, (due + REPORT_INTERVAL, index, _REPORT))
            # A worker without an ack says client_ready again, as Locust's does.
            if int(now / CONNECT_TIMEOUT) != int((now - TICK) / CONNECT_TIMEOUT):
                for w in self.workers:
                    if not w.acked and w.ready_sent and now - w.ready_sent >= CONNECT_TIMEOUT:
                        self.client_ready(w)
            self.drain()
            if not self.handle_commands():
                break
            next_tick += TICK
            delay = next_tick - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                next_tick = time.monotonic()
        self.ctx.destroy(linger=0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, required=True)
    parser.add_argument("--names", type=int, default=100, help="entries per stats report (default 100)")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if 3 * args.workers + 100 > hard:
        raise SystemExit(f"{args.workers} workers need about {3 * args.workers} file descriptors; the limit is {hard}")
    Swarm(args.host, args.port, args.workers, args.names).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A distributed test: user classes spread over workers by weight and fixed_count, custom messages
between master and workers both ways, and a locustfile's own figures in the workers' reports.

    horde -f locustfiles/distributed.py --master --headless --expect-workers 2 -u 10 -r 10 -t 10s -H URL
    horde -f locustfiles/distributed.py --worker          # twice, on this machine or others
    horde -f locustfiles/distributed.py --processes 2 --headless -u 10 -r 10 -t 10s -H URL   # one box

The same file runs as a single process too (the messages then go to the process itself). A Locust
master or Locust workers can take either side.
"""

import json
import os
from collections import defaultdict

from locust import FastHttpUser, HttpUser, constant, events, task
from locust.runners import MasterRunner, WorkerRunner


class Browser(FastHttpUser):
    weight = 3
    wait_time = constant(0.05)

    @task
    def home(self):
        self.client.get("/")


class Poster(HttpUser):
    weight = 1
    wait_time = constant(0.05)

    @task
    def echo(self):
        self.client.post("/echo", json={"n": 1}, name="/echo")


class Operator(HttpUser):
    # One of these in the whole test, whatever the number of workers.
    fixed_count = 1
    wait_time = constant(0.2)

    @task
    def status(self):
        self.client.get("/json", name="admin status")


# What the master heard from each worker (worker id -> requests reported), written out at the
# end when DISTRIBUTED_SUMMARY names a file.
reported: dict[str, int] = defaultdict(int)
greeted: list[int] = []
nodes = {}


def on_greeting(environment, msg, **kwargs):
    # On a worker: the master says hello; answer with this worker's index.
    index = getattr(environment.runner, "worker_index", 0)
    environment.runner.send_message("greeting_back", {"index": index, "text": msg.data["text"]})


def on_greeting_back(environment, msg, **kwargs):
    # On the master: a worker answered.
    greeted.append(msg.data["index"])


@events.init.add_listener
def on_init(environment, **kwargs):
    runner = nodes["runner"] = environment.runner
    if not isinstance(runner, MasterRunner):
        runner.register_message("greeting", on_greeting)
    if not isinstance(runner, WorkerRunner):
        runner.register_message("greeting_back", on_greeting_back)


@events.spawning_complete.add_listener
def on_spawned(user_count, **kwargs):
    # The master (or a single process) greets every worker once the users are there.
    runner = nodes.get("runner")
    if runner is not None and not isinstance(runner, WorkerRunner):
        runner.send_message("greeting", {"text": "hello"})


@events.report_to_master.add_listener
def on_report_to_master(client_id, data, **kwargs):
    # A worker's own figure rides along with the stats (Locust adds the stats after this runs).
    data["pid"] = os.getpid()


@events.worker_report.add_listener
def on_worker_report(client_id, data, **kwargs):
    reported[client_id] += data["stats_total"]["num_requests"]


@events.quitting.add_listener
def on_quitting(environment, **kwargs):
    path = os.environ.get("DISTRIBUTED_SUMMARY")
    if path and not isinstance(environment.runner, WorkerRunner):
        with open(path, "w") as f:
            json.dump({"reported": reported, "greeted": sorted(greeted)}, f)

"""The open workload model: run it with an arrival rate, e.g.

    horde -f locustfiles/open_model.py --demo-target --headless -t 30s -u 20 --max-users 200 --arrival-rate 500

500 iterations start every second whatever the server does; each is one task of a free user
from a pool of 20 that grows to 200 when none is free (arrivals beyond that are dropped and
counted). Users keep their state: each logs in once in on_start and counts its own iterations.
Response times are measured from each iteration's scheduled start, so a stalled server shows as
the traffic that piled up behind it. Without --arrival-rate it runs as a closed model, users
waiting wait_time between tasks (which the open model ignores).
"""

from locust import HttpUser, between, task


class Shopper(HttpUser):
    wait_time = between(0.05, 0.1)

    def on_start(self):
        self.client.post("/echo", json={"user": "shopper"}, name="login")
        self.iterations = 0

    @task(3)
    def browse(self):
        self.iterations += 1
        self.client.get("/json", name="browse")

    @task(1)
    def checkout(self):
        self.iterations += 1
        # One iteration, two requests: only the first is timed from the scheduled start.
        self.client.get("/", name="cart")
        self.client.post("/echo", json={"n": self.iterations}, name="checkout")

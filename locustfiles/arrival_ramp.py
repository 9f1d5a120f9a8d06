"""A ramp of arrival rates (k6's ramping-arrival-rate, Gatling's rampUsersPerSec): up to 200
iterations/s over 1 s, hold for 2 s, then the test ends. The shape's ticks set the rate; -u, -r
and --arrival-rate are ignored, as with any LoadTestShape.

    horde -f locustfiles/arrival_ramp.py --demo-target --headless
"""

from locust import HttpUser, task

from horde import RampingArrivalRate


class Viewer(HttpUser):
    @task
    def read(self):
        self.client.get("/json", name="read")


class Ramp(RampingArrivalRate):
    stages = [(1, 200), (2, 200)]
    users = 5
    max_users = 50

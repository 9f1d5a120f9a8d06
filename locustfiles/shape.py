"""A LoadTestShape: 5 users for 2 s, 10 for 2 s more, then the test ends (tick returns None)."""

from locust import HttpUser, LoadTestShape, constant, task


class ShapedUser(HttpUser):
    wait_time = constant(0.05)

    @task
    def home(self):
        self.client.get("/")


class Steps(LoadTestShape):
    stages = [(2, 5, 5), (4, 10, 10)]

    def tick(self):
        run_time = self.get_run_time()
        for end, users, rate in self.stages:
            if run_time < end:
                return (users, rate)
        return None

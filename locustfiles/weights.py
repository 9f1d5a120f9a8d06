"""Task weights given three ways, and user classes mixed by weight and fixed_count."""

from locust import HttpUser, TaskSet, constant, task


def fetch_json(user):
    user.client.get("/json")


class Browse(TaskSet):
    tasks = {fetch_json: 1}

    @task(3)
    def home(self):
        self.client.get("/")
        self.interrupt()


class Reader(HttpUser):
    """Weighted by decorator: home three times as often as bytes."""

    weight = 3
    wait_time = constant(0.05)

    @task(3)
    def home(self):
        self.client.get("/")

    @task
    def small_download(self):
        self.client.get("/bytes/128")


class Writer(HttpUser):
    """Weighted by a dict, one entry of which is a nested TaskSet."""

    weight = 1
    wait_time = constant(0.05)
    tasks = {Browse: 1}

    @task(2)
    def echo(self):
        self.client.post("/echo", json={"hello": "world"})


class Admin(HttpUser):
    """Exactly one of these runs, whatever the user count."""

    fixed_count = 1
    wait_time = constant(0.1)
    tasks = [fetch_json]

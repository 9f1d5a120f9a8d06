"""Tagged tasks, for --tags and --exclude-tags."""

from locust import HttpUser, constant, tag, task


class TaggedUser(HttpUser):
    wait_time = constant(0.02)

    @tag("read")
    @task
    def read(self):
        self.client.get("/json", name="read")

    @tag("write", "slow")
    @task
    def write(self):
        self.client.post("/echo", json={}, name="write")

    @task
    def untagged(self):
        self.client.get("/", name="untagged")

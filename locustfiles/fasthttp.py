"""FastHttpUser: the same API as HttpUser, with Locust's FastHttpUser naming and failure rules."""

from locust import FastHttpUser, constant, task


class FastUser(FastHttpUser):
    wait_time = constant(0.02)

    @task(3)
    def home(self):
        self.client.get("/")

    @task
    def redirect(self):
        self.client.get("/redirect/1")

    @task
    def server_error(self):
        self.client.get("/status/503")

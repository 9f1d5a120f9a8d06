"""Nested TaskSets, interrupt(), and on_start/on_stop on users and task sets."""

from locust import HttpUser, TaskSet, between, task


class ForumThread(TaskSet):
    def on_start(self):
        self.client.get("/echo?page=thread", name="thread:on_start")

    @task(3)
    def read_post(self):
        self.client.get("/json", name="thread:read")

    @task(1)
    def leave(self):
        self.interrupt()

    def on_stop(self):
        self.client.get("/echo?page=bye", name="thread:on_stop")


class Forum(TaskSet):
    tasks = {ForumThread: 2}

    @task(1)
    def index(self):
        self.client.get("/", name="forum:index")


class ForumUser(HttpUser):
    wait_time = between(0.01, 0.05)
    tasks = [Forum]

    def on_start(self):
        self.client.post("/login", json={"username": "forum", "password": "pw"}, name="user:on_start")

    def on_stop(self):
        self.client.get("/echo?bye=1", name="user:on_stop")

"""Deciding success and failure in code: catch_response, rest() with .js, and name=."""

from locust import FastHttpUser, HttpUser, constant, task


class Checker(HttpUser):
    wait_time = constant(0.02)

    @task
    def status_404_is_fine_here(self):
        with self.client.get("/status/404", catch_response=True, name="expected 404") as resp:
            if resp.status_code == 404:
                resp.success()

    @task
    def wrong_content_fails(self):
        with self.client.get("/json", catch_response=True, name="content check") as resp:
            if "no such text" not in resp.text:
                resp.failure("Did not get expected text")

    @task
    def rest_json(self):
        with self.rest("POST", "/echo", json={"n": 1}) as resp:
            assert resp.js["json"]["n"] == 1, "echo lost the payload"


class FastChecker(FastHttpUser):
    wait_time = constant(0.02)

    @task
    def rest_assertion_fails(self):
        with self.rest("GET", "/json") as resp:
            if resp.js["slideshow"] is not None:
                raise AssertionError("deliberate assertion failure,")

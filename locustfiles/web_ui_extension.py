"""Extending the web UI from a locustfile: a route of your own on ``environment.web_ui.app``,
behind ``--web-login`` when that is on. Run without ``--headless`` and open /greeting."""

from locust import HttpUser, constant, events, task


@events.init.add_listener
def add_greeting_route(environment, web_ui=None, **_kwargs):
    if web_ui is None:  # --headless: no UI to extend
        return

    @web_ui.app.route("/greeting")
    @web_ui.auth_required_if_enabled
    def greeting():
        total = environment.runner.stats.total
        return {"greeting": "hello from the locustfile", "requests": total.num_requests}


class Visitor(HttpUser):
    wait_time = constant(0.1)

    @task
    def home(self):
        self.client.get("/")

"""The RealWorld "Conduit" journey against horde's demo target.

Each user logs in once and keeps its token, then repeatedly lists articles, creates one, reads it
back, favorites it, comments on it and deletes it. Run it with:

    horde-demo serve --port 8080 &
    horde -f locustfiles/conduit.py --headless -u 20 -r 10 -t 30s -H http://127.0.0.1:8080
"""

import itertools

from locust import HttpUser, SequentialTaskSet, between, task

_ids = itertools.count()


class ArticleLifecycle(SequentialTaskSet):
    """One article from creation to deletion, in order."""

    def on_start(self):
        self.slug = None

    @task
    def list_articles(self):
        self.client.get("/api/articles?limit=10", name="/api/articles?limit=[n]")

    @task
    def create_article(self):
        article = {"title": f"Load testing {next(_ids)}", "description": "why", "body": "because", "tagList": ["perf"]}
        with self.client.post("/api/articles", json={"article": article}, catch_response=True) as resp:
            if resp.status_code != 201:
                resp.failure(f"create failed with {resp.status_code}")
                self.interrupt()
            self.slug = resp.json()["article"]["slug"]

    @task
    def read_article(self):
        with self.client.get(f"/api/articles/{self.slug}", name="/api/articles/[slug]", catch_response=True) as resp:
            if resp.status_code == 200 and resp.json()["article"]["slug"] != self.slug:
                resp.failure("read back a different article")

    @task
    def favorite(self):
        with self.client.post(
            f"/api/articles/{self.slug}/favorite", name="/api/articles/[slug]/favorite", catch_response=True
        ) as resp:
            if resp.status_code == 200 and not resp.json()["article"]["favorited"]:
                resp.failure("favorite did not stick")

    @task
    def comment(self):
        self.client.post(
            f"/api/articles/{self.slug}/comments",
            json={"comment": {"body": "Nice article"}},
            name="/api/articles/[slug]/comments",
        )

    @task
    def delete(self):
        self.client.delete(f"/api/articles/{self.slug}", name="/api/articles/[slug]")
        self.slug = None


class ConduitUser(HttpUser):
    wait_time = between(0.1, 0.5)
    tasks = [ArticleLifecycle]

    def on_start(self):
        n = next(_ids)
        resp = self.client.post(
            "/api/users/login", json={"user": {"email": f"user{n}@example.com", "password": "secret"}}
        )
        self.token = resp.json()["user"]["token"]
        self.client.headers["Authorization"] = f"Token {self.token}"

"""A MarkovTaskSet: the next task is drawn from the current task's transitions."""

from locust import HttpUser, MarkovTaskSet, constant, transition, transitions


class Shopper(MarkovTaskSet):
    @transition("browse")
    def arrive(self):
        self.client.get("/", name="arrive")

    @transitions({"browse": 2, "cart": 1})
    def browse(self):
        self.client.get("/json", name="browse")

    @transitions([("checkout", 1), ("browse", 1)])
    def cart(self):
        self.client.post("/echo", json={"item": 1}, name="cart")

    @transition("arrive")
    def checkout(self):
        self.client.post("/echo", json={"pay": True}, name="checkout")


class ShopUser(HttpUser):
    wait_time = constant(0.01)
    tasks = [Shopper]

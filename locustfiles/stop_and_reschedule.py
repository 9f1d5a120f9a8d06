"""StopUser, RescheduleTask and RescheduleTaskImmediately, raised from tasks."""

from locust import HttpUser, constant, task
from locust.exception import RescheduleTask, RescheduleTaskImmediately, StopUser


class Quitter(HttpUser):
    wait_time = constant(0.02)

    def on_start(self):
        self.left = 5

    @task
    def count_down(self):
        self.client.get("/", name="count_down")
        self.left -= 1
        if self.left == 0:
            raise StopUser()
        if self.left % 2:
            raise RescheduleTaskImmediately()
        raise RescheduleTask()

    def on_stop(self):
        self.client.get("/echo?stopped=1", name="on_stop")

"""Each of Locust's wait_time functions on its own user class."""

from locust import HttpUser, between, constant, constant_pacing, constant_throughput, poisson, task


class Base(HttpUser):
    abstract = True

    @task
    def hello(self):
        self.client.get("/", name=type(self).__name__)


class Between(Base):
    wait_time = between(0.05, 0.1)


class Constant(Base):
    wait_time = constant(0.1)


class Pacing(Base):
    wait_time = constant_pacing(0.1)


class Throughput(Base):
    wait_time = constant_throughput(10)


class Poisson(Base):
    wait_time = poisson(10)

"""Event listeners and a custom command-line option (--greeting), as locustfiles use them."""

from locust import HttpUser, constant, events, task

seen = {"requests": 0}


@events.init_command_line_parser.add_listener
def add_options(parser, **kwargs):
    parser.add_argument("--greeting", default="hello", help="text sent to /echo")


@events.request.add_listener
def count_requests(request_type, name, response_time, response_length, exception, **kwargs):
    seen["requests"] += 1


@events.test_start.add_listener
def on_test_start(environment, **kwargs):
    seen["started"] = True


@events.quitting.add_listener
def report(environment, **kwargs):
    print(f"request listener saw {seen['requests']} requests; test_start fired: {seen.get('started', False)}")


class GreetingUser(HttpUser):
    wait_time = constant(0.02)

    @task
    def greet(self):
        self.client.get(f"/echo?greeting={self.environment.parsed_options.greeting}", name="/echo?greeting")

"""One way out of a run: SIGTERM and Ctrl-C (SIGINT) at each phase of a test (spawning, running,
under a LoadTestShape, stopping, with the web UI, twice in a row, with --processes) print one
summary, write every report, fire Locust's quit event once, exit with the right code and print no
traceback. Each case is a real ``horde`` process, signalled once its log says it is in that phase."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_helpers import stats_rows
from conftest import free_port

# Listeners that say how often the events that end a test fire: each must fire once.
EVENT_COUNTERS = """
from locust import events

@events.test_stop.add_listener
def _test_stop(**kwargs):
    print("test_stop event fired", flush=True)

@events.quit.add_listener
def _quit(exit_code, **kwargs):
    print(f"quit event fired (exit code {exit_code})", flush=True)

_answered = []

@events.request.add_listener
def _first_response(**kwargs):
    if not _answered:
        _answered.append(True)
        print("first response", flush=True)
"""

STEADY = (
    "from locust import HttpUser, constant, task\n"
    "class Steady(HttpUser):\n"
    "    wait_time = constant(0.05)\n"
    "    @task\n"
    "    def home(self):\n"
    "        self.client.get('/')\n"
    "    @task\n"
    "    def broken(self):\n"
    "        self.client.get('/status/500' if self.environment.parsed_options.fail else '/json')\n"
    "from locust import events\n"
    "@events.init_command_line_parser.add_listener\n"
    "def _options(parser):\n"
    "    parser.add_argument('--fail', action='store_true')\n"
) + EVENT_COUNTERS

# Locust's examples/custom_shape/stages.py in short: stages of users that outlast the test.
SHAPE = (
    "from locust import HttpUser, LoadTestShape, constant, task\n"
    "class Shaped(HttpUser):\n"
    "    wait_time = constant(0.1)\n"
    "    @task\n"
    "    def home(self):\n"
    "        self.client.get('/')\n"
    "class StagesShape(LoadTestShape):\n"
    "    stages = [{'duration': 600, 'users': 5, 'spawn_rate': 5}, {'duration': 1200, 'users': 10, 'spawn_rate': 5}]\n"
    "    def tick(self):\n"
    "        run_time = self.get_run_time()\n"
    "        for stage in self.stages:\n"
    "            if run_time < stage['duration']:\n"
    "                return (stage['users'], stage['spawn_rate'])\n"
    "        return None\n"
) + EVENT_COUNTERS

# A task that outlasts any stop timeout: stopping it waits for --stop-timeout unless told not to.
LINGERING = (
    "import gevent\n"
    "from locust import HttpUser, constant, task\n"
    "class Lingering(HttpUser):\n"
    "    wait_time = constant(0.05)\n"
    "    @task\n"
    "    def long_task(self):\n"
    "        self.client.get('/')\n"
    "        gevent.sleep(600)\n"
    "        self.client.get('/json', name='after the sleep')\n"
) + EVENT_COUNTERS


class Horde:
    """A ``horde`` process whose output goes to files, so that the test can wait for a line."""

    def __init__(self, tmp_path: Path, locustfile: str, *args: str) -> None:
        self.tmp_path = tmp_path
        path = tmp_path / "locustfile.py"
        path.write_text(locustfile)
        self.out = tmp_path / "stdout.txt"
        self.err = tmp_path / "stderr.txt"
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOCUST_")}
        env["PYTHONWARNINGS"] = "ignore"
        with open(self.out, "w") as out, open(self.err, "w") as err:
            # A session of its own: a terminal's Ctrl-C goes to every process of the group.
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "horde", "-f", str(path), *args],
                stdout=out,
                stderr=err,
                env=env,
                start_new_session=True,
            )

    def output(self) -> str:
        return self.err.read_text() + self.out.read_text()

    def wait_for(self, line: str, timeout: float = 60) -> None:
        """Waits until the output contains ``line`` (the process is then in that phase)."""
        deadline = time.monotonic() + timeout
        while line not in self.output():
            if self.proc.poll() is not None:
                pytest.fail(f"horde exited ({self.proc.returncode}) before {line!r}:\n{self.output()[-3000:]}")
            if time.monotonic() > deadline:
                self.proc.kill()
                pytest.fail(f"no {line!r} after {timeout} s:\n{self.output()[-3000:]}")
            time.sleep(0.1)

    def signal(self, signum: int, group: bool = False) -> None:
        if group:
            os.killpg(self.proc.pid, signum)
        else:
            self.proc.send_signal(signum)

    def finish(self, timeout: float = 90) -> str:
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"horde did not exit within {timeout} s:\n{self.output()[-3000:]}")
        return self.output()


def report_args(tmp_path: Path) -> list[str]:
    return [
        "--csv", str(tmp_path / "run"), "--html", str(tmp_path / "report.html"),
        "--hdr-json", str(tmp_path / "hdr.json"), "--only-summary",
    ]  # fmt: skip


def assert_one_clean_shutdown(out: str, tmp_path: Path, processes: int = 1) -> None:
    """One summary, one of each event, no traceback, every report written."""
    assert "Traceback" not in out and "SystemExit" not in out, out[-4000:]
    # --processes: each worker process shuts down too, printing no summary.
    assert out.count("Shutting down (exit code") == processes, out[-4000:]
    assert out.count("Response time percentiles (approximated)") == 1, out[-4000:]
    if processes == 1:
        assert out.count("test_stop event fired") == 1, out[-4000:]
        assert out.count("quit event fired") == 1, out[-4000:]
    after_shutdown = out[out.index("Shutting down (exit code") :]
    assert "Run time limit set" not in after_shutdown
    rows = stats_rows(tmp_path / "run_stats.csv")
    assert int(rows[("", "Aggregated")]["Request Count"]) > 0
    for name in ("run_failures.csv", "run_exceptions.csv", "run_stats_history.csv"):
        assert (tmp_path / name).exists(), name
    assert "<html" in (tmp_path / "report.html").read_text().lower()
    assert json.loads((tmp_path / "hdr.json").read_text())["total"]["num_requests"] > 0


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_while_spawning(demo, tmp_path, signum):
    # One user a second of a hundred: the ramp lasts far longer than the test.
    horde = Horde(tmp_path, STEADY, "--headless", "-u", "100", "-r", "1", "-H", demo.url, *report_args(tmp_path))
    horde.wait_for("Ramping to 100 users")
    horde.wait_for("first response")
    horde.signal(signum)
    out = horde.finish()
    assert horde.proc.returncode == 0, out[-3000:]
    assert f"Got {signum.name} signal" in out
    assert_one_clean_shutdown(out, tmp_path)


def test_sigterm_while_running_exits_with_the_failures_code(demo, tmp_path):
    horde = Horde(
        tmp_path, STEADY, "--headless", "-u", "4", "-r", "4", "-H", demo.url, "--fail", *report_args(tmp_path)
    )
    horde.wait_for("All users spawned")
    horde.wait_for("first response")
    horde.signal(signal.SIGTERM)
    out = horde.finish()
    assert horde.proc.returncode == 1, out[-3000:]
    assert_one_clean_shutdown(out, tmp_path)
    assert "/status/500" in (tmp_path / "run_failures.csv").read_text()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_under_a_load_test_shape(demo, tmp_path, signum):
    # The case of the report: a shape, -t (which a shape ignores), a signal after a few seconds.
    horde = Horde(tmp_path, SHAPE, "--headless", "-t", "4s", "-H", demo.url, *report_args(tmp_path))
    horde.wait_for("Shape test updating to 5 users")
    horde.wait_for("All users spawned")
    horde.wait_for("first response")
    horde.signal(signum)
    out = horde.finish()
    assert horde.proc.returncode == 0, out[-3000:]
    assert "Run time limit set" not in out and "Shape test completed" not in out
    assert_one_clean_shutdown(out, tmp_path)


def test_signal_while_stopping_stops_the_users_at_once(demo, tmp_path):
    # -t has been reached and the stop waits up to --stop-timeout for a task that sleeps longer:
    # a signal then stops the user at once (the wait would outlast finish()'s timeout).
    horde = Horde(
        tmp_path, LINGERING, "--headless", "-u", "1", "-t", "1s", "--stop-timeout", "600", "-H", demo.url,
        *report_args(tmp_path),
    )  # fmt: skip
    horde.wait_for("--run-time limit reached")
    horde.signal(signal.SIGINT)
    out = horde.finish()
    assert horde.proc.returncode == 0, out[-3000:]
    assert "Stopping the 1 users still finishing their task now" in out
    assert_one_clean_shutdown(out, tmp_path)
    assert ("GET", "after the sleep") not in stats_rows(tmp_path / "run_stats.csv")


def test_second_signal_cuts_the_stop_timeout_short(demo, tmp_path):
    horde = Horde(
        tmp_path, LINGERING, "--headless", "-u", "2", "-r", "2", "--stop-timeout", "600", "-H", demo.url,
        *report_args(tmp_path),
    )  # fmt: skip
    horde.wait_for("All users spawned")
    horde.wait_for("first response")
    horde.signal(signal.SIGINT)
    horde.wait_for("Got SIGINT signal")
    horde.signal(signal.SIGTERM)
    out = horde.finish()
    assert horde.proc.returncode == 0, out[-3000:]
    assert "Got SIGTERM signal while shutting down" in out
    assert_one_clean_shutdown(out, tmp_path)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_with_the_web_ui(demo, tmp_path, signum):
    port = free_port()
    horde = Horde(
        tmp_path, STEADY, "--autostart", "-u", "3", "-r", "3", "-H", demo.url, "--web-port", str(port),
        *report_args(tmp_path),
    )  # fmt: skip
    horde.wait_for("Starting web interface")
    horde.wait_for("All users spawned")
    horde.wait_for("first response")
    horde.signal(signum)
    out = horde.finish()
    assert horde.proc.returncode == 0, out[-3000:]
    assert_one_clean_shutdown(out, tmp_path)


@pytest.mark.parametrize("group", [False, True], ids=["SIGTERM-to-the-parent", "Ctrl-C-to-the-group"])
def test_signal_with_processes(demo, tmp_path, group):
    horde = Horde(
        tmp_path, STEADY, "--headless", "--processes", "2", "-u", "4", "-r", "4", "-H", demo.url,
        "--master-bind-port", str(free_port()), *report_args(tmp_path),
    )  # fmt: skip
    horde.wait_for("All users spawned")
    horde.wait_for("first response")
    horde.signal(signal.SIGINT if group else signal.SIGTERM, group=group)
    out = horde.finish()
    assert horde.proc.returncode == 0, out[-3000:]
    assert_one_clean_shutdown(out, tmp_path, processes=3)
    # The workers are gone with their parent: nothing is left in the process group.
    with pytest.raises(ProcessLookupError):
        for _ in range(100):
            os.killpg(horde.proc.pid, 0)
            time.sleep(0.1)

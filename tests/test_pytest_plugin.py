"""horde's pytest plugin as its users meet it: a test file using the fixtures, run by pytest in a
subprocess (the plugin comes from the installed package's pytest11 entry point)."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

USERS = """
from locust import HttpUser, constant, task


class Reader(HttpUser):
    wait_time = constant(0.01)

    @task
    def hello(self):
        self.client.get("/")


class Breaker(HttpUser):
    wait_time = constant(0.01)

    @task
    def broken(self):
        self.client.get("/status/500", name="broken")
"""


def _write(pytester: pytest.Pytester, body: str) -> None:
    pytester.makepyfile(test_load=USERS.replace("from locust import", "from horde import") + body)


def test_fixtures_run_a_load_test_and_slo_passes(pytester: pytest.Pytester) -> None:
    _write(
        pytester,
        """
def test_fast(horde_run, horde_demo):
    result = horde_run(Reader, host=horde_demo.url, users=3, run_time="1s")
    assert result.num_requests > 0
    result.assert_slo(p99="5s", fail_ratio=0.0, rps=">=1")
""",
    )
    outcome = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    outcome.assert_outcomes(passed=1)


def test_broken_slo_fails_the_test_with_the_bound_and_the_excess(pytester: pytest.Pytester) -> None:
    _write(
        pytester,
        """
def test_errors(horde_run, horde_demo):
    result = horde_run(Breaker, host=horde_demo.url, users=2, run_time="1s")
    result.assert_slo(fail_ratio="1%")
""",
    )
    outcome = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    outcome.assert_outcomes(failed=1)
    output = outcome.stdout.str()
    assert "SLO broken for all requests" in output
    assert "fail_ratio = 100.00%, bound <= 1.00%: over by 99.00%" in output
    # The run's summary is attached to the failing test's report.
    assert "horde" in output and "GET" in output and "broken" in output


def test_load_tests_are_marked_and_can_be_deselected(pytester: pytest.Pytester) -> None:
    _write(
        pytester,
        """
def test_load(horde_run, horde_demo):
    horde_run(Reader, host=horde_demo.url, users=1, run_time="1s")


def test_unit():
    assert True
""",
    )
    outcome = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-m", "not load_test")
    outcome.assert_outcomes(passed=1, deselected=1)
    outcome = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--markers")
    assert "@pytest.mark.load_test" in outcome.stdout.str()


def test_html_reports_are_kept_per_test(pytester: pytest.Pytester) -> None:
    _write(
        pytester,
        """
import pytest


@pytest.mark.parametrize("users", [1, 2])
def test_load(horde_run, horde_demo, users):
    horde_run(Reader, host=horde_demo.url, users=users, run_time="30s")
""",
    )
    # --horde-run-time shortens every run, whatever the test asks for.
    outcome = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--horde-html", "reports", "--horde-run-time", "1s", "--durations=0"
    )
    outcome.assert_outcomes(passed=2)
    reports = sorted(p.name for p in (pytester.path / "reports").iterdir())
    assert reports == ["test_load.py_test_load_1.html", "test_load.py_test_load_2.html"]
    html = (pytester.path / "reports" / reports[0]).read_text()
    assert html.lstrip().lower().startswith("<!doctype html") and "Reader" in html

"""The ``horde`` command end to end: real headless runs against the demo target, the reports they
write, exit codes, signals, and what a user sees when the input is wrong."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_helpers import LOCUSTFILES, ROOT, run_horde, stats_rows

# What each example locustfile must produce: (method, name) rows that must appear, rows that must
# fail, and the exit code.
EXPECTED = {
    "conduit.py": (
        {
            ("POST", "/api/users/login"),
            ("GET", "/api/articles?limit=[n]"),
            ("POST", "/api/articles"),
            ("GET", "/api/articles/[slug]"),
            ("POST", "/api/articles/[slug]/favorite"),
            ("POST", "/api/articles/[slug]/comments"),
            ("DELETE", "/api/articles/[slug]"),
        },
        set(),
        0,
    ),
    "weights.py": ({("GET", "/"), ("GET", "/bytes/128"), ("POST", "/echo"), ("GET", "/json")}, set(), 0),
    "tasksets.py": ({("POST", "user:on_start"), ("GET", "forum:index"), ("GET", "thread:read")}, set(), 0),
    "markov.py": ({("GET", "arrive"), ("GET", "browse")}, set(), 0),
    "wait_times.py": (
        {("GET", "Between"), ("GET", "Constant"), ("GET", "Pacing"), ("GET", "Throughput"), ("GET", "Poisson")},
        set(),
        0,
    ),
    "catch_response.py": (
        {("GET", "expected 404"), ("GET", "content check"), ("POST", "/echo"), ("GET", "/json")},
        {("GET", "content check"), ("GET", "/json")},
        1,
    ),
    "shape.py": ({("GET", "/")}, set(), 0),
    "tags.py": ({("GET", "read"), ("POST", "write"), ("GET", "untagged")}, set(), 0),
    "events_and_options.py": ({("GET", "/echo?greeting")}, set(), 0),
    "custom_client.py": ({("RAW", "/"), ("RAW", "/status/500")}, {("RAW", "/status/500")}, 1),
    "fasthttp.py": ({("GET", "/"), ("GET", "/redirect/1"), ("GET", "/status/503")}, {("GET", "/status/503")}, 1),
    "stop_and_reschedule.py": ({("GET", "count_down"), ("GET", "on_stop")}, set(), 0),
    "web_ui_extension.py": ({("GET", "/")}, set(), 0),
    "distributed.py": ({("GET", "/"), ("POST", "/echo"), ("GET", "admin status")}, set(), 0),
    "open_model.py": ({("POST", "login"), ("GET", "browse"), ("GET", "cart"), ("POST", "checkout")}, set(), 0),
    "arrival_ramp.py": ({("GET", "read")}, set(), 0),
}


def test_every_example_locustfile_is_covered():
    assert {p.name for p in LOCUSTFILES.glob("*.py")} == set(EXPECTED)


@pytest.mark.parametrize("locustfile", sorted(EXPECTED))
def test_example_locustfile_runs(locustfile, demo, tmp_path):
    must_have, must_fail, exit_code = EXPECTED[locustfile]
    result = run_horde(
        "-f", str(LOCUSTFILES / locustfile), "--headless", "-u", "6", "-r", "6", "-t", "3s",
        "-H", demo.url, "--csv", str(tmp_path / "run"), "--only-summary",
    )  # fmt: skip
    assert result.returncode == exit_code, result.stderr[-3000:]
    rows = stats_rows(tmp_path / "run_stats.csv")
    methods_names = {k for k in rows if k[1] != "Aggregated"}
    assert must_have <= methods_names, (must_have - methods_names, result.stderr[-2000:])
    failing = {k for k, row in rows.items() if k[1] != "Aggregated" and int(row["Failure Count"]) > 0}
    assert failing == must_fail
    assert int(rows[("", "Aggregated")]["Request Count"]) > 0


def test_headless_run_prints_locust_tables(demo):
    result = run_horde(
        "-f", str(LOCUSTFILES / "conduit.py"), "--headless", "-u", "3", "-r", "3", "-t", "3s", "-H", demo.url
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stderr + result.stdout
    assert "Type     Name" in out and "# reqs" in out
    assert "Aggregated" in out
    assert "Response time percentiles (approximated)" in out
    assert "Shutting down (exit code 0)" in out


def test_failures_set_the_exit_code(demo, tmp_path):
    locustfile = tmp_path / "fails.py"
    locustfile.write_text(
        "from locust import HttpUser, task, constant\n"
        "class U(HttpUser):\n"
        "    wait_time = constant(0.05)\n"
        "    @task\n"
        "    def t(self):\n"
        "        self.client.get('/status/500')\n"
    )
    result = run_horde("-f", str(locustfile), "--headless", "-u", "1", "-t", "1s", "-H", demo.url)
    assert result.returncode == 1
    assert "Error report" in result.stderr + result.stdout
    result = run_horde(
        "-f", str(locustfile), "--headless", "-u", "1", "-t", "1s", "-H", demo.url, "--exit-code-on-error", "3"
    )
    assert result.returncode == 3


def test_json_and_html_reports(demo, tmp_path):
    html = tmp_path / "report.html"
    result = run_horde(
        "-f", str(LOCUSTFILES / "weights.py"), "--headless", "-u", "4", "-r", "4", "-t", "2s", "-H", demo.url,
        "--json", "--html", str(html),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    entries = json.loads(result.stdout)
    assert {e["name"] for e in entries} >= {"/", "/json"}
    assert all(e["num_requests"] > 0 for e in entries)
    text = html.read_text()
    assert "<html" in text.lower() and "/bytes/128" in text
    assert "http://" not in text.replace(demo.url, "") or "https://" not in text
    data = json.loads(re.search(r'<script type="application/json" id="report-data">(.*?)</script>', text, re.S)[1])
    # The charts' points: the web UI's, one a second while users ran (Locust's rows come every 5 s).
    times = [point["time"] for point in data["chart_history"]]
    assert times and times == sorted(set(times))
    total = data["precise_response_time_statistics"][-1]
    assert 0 < total["0.5"] <= total["0.95"] <= total["0.99"] <= total["1.0"]

    result = run_horde(
        "-f", str(LOCUSTFILES / "weights.py"), "--headless", "-u", "2", "-t", "1s", "-H", demo.url,
        "--json-file", str(tmp_path / "out"),
    )  # fmt: skip
    assert result.returncode == 0
    assert json.loads((tmp_path / "out.json").read_text())


def wait_for_requests(proc: subprocess.Popen, csv_prefix: Path, timeout: float = 60.0) -> None:
    """Until ``horde --csv csv_prefix`` has counted requests (its CSV is rewritten every second),
    rather than a sleep assumed long enough for it to start."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "horde exited early"
        try:
            if int(stats_rows(Path(f"{csv_prefix}_stats.csv"))[("", "Aggregated")]["Request Count"]) > 0:
                return
        except (FileNotFoundError, KeyError, ValueError):
            pass  # not written yet, or caught mid-rewrite
        time.sleep(0.1)
    raise AssertionError(f"no request counted in {csv_prefix}_stats.csv after {timeout} s")


def test_sigterm_stops_prints_and_writes(demo, tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "horde", "-f", str(LOCUSTFILES / "weights.py"), "--headless", "-u", "4",
         "-H", demo.url, "--csv", str(tmp_path / "run")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    wait_for_requests(proc, tmp_path / "run")
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err[-3000:]
    assert "Got SIGTERM signal" in err
    assert "Response time percentiles (approximated)" in out + err
    rows = stats_rows(tmp_path / "run_stats.csv")
    assert int(rows[("", "Aggregated")]["Request Count"]) > 0


def test_ctrl_c_stops_prints_and_writes(demo, tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "horde", "-f", str(LOCUSTFILES / "weights.py"), "--headless", "-u", "2",
         "-H", demo.url, "--csv", str(tmp_path / "run")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    wait_for_requests(proc, tmp_path / "run")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err[-3000:]
    assert "Aggregated" in out + err
    assert (tmp_path / "run_stats.csv").exists()


def test_syntax_error_in_locustfile(tmp_path):
    bad = tmp_path / "broken.py"
    bad.write_text("from locust import HttpUser\nclass U(HttpUser:\n    pass\n")
    result = run_horde("-f", str(bad), "--headless", "-t", "1s")
    assert result.returncode == 1
    assert "broken.py" in result.stderr and "line 2" in result.stderr


def test_import_error_in_locustfile(tmp_path):
    bad = tmp_path / "needs_missing.py"
    bad.write_text("import no_such_module_anywhere\n")
    result = run_horde("-f", str(bad), "--headless", "-t", "1s")
    assert result.returncode == 1
    assert "no_such_module_anywhere" in result.stderr


def test_locustfile_without_user_class(tmp_path):
    empty = tmp_path / "empty.py"
    empty.write_text("from locust import HttpUser\n")
    result = run_horde("-f", str(empty), "--headless", "-t", "1s")
    assert result.returncode == 1
    assert "No User class found!" in result.stderr


def test_exceptions_in_on_start_and_tasks_are_reported(demo, tmp_path):
    f = tmp_path / "raises.py"
    f.write_text(
        "from locust import HttpUser, task, constant\n"
        "class Starter(HttpUser):\n"
        "    wait_time = constant(0.05)\n"
        "    def on_start(self):\n"
        "        raise RuntimeError('on_start went wrong')\n"
        "    @task\n"
        "    def t(self):\n"
        "        self.client.get('/')\n"
        "class Tasker(HttpUser):\n"
        "    wait_time = constant(0.05)\n"
        "    @task\n"
        "    def t(self):\n"
        "        self.client.get('/json')\n"
        "        raise ValueError('task went wrong')\n"
    )
    result = run_horde(
        "-f", str(f), "--headless", "-u", "2", "-r", "2", "-t", "2s", "-H", demo.url, "--csv", str(tmp_path / "r")
    )
    assert result.returncode == 1, result.stderr[-3000:]
    exceptions = (tmp_path / "r_exceptions.csv").read_text()
    assert "on_start went wrong" in exceptions and "task went wrong" in exceptions
    assert int(stats_rows(tmp_path / "r_stats.csv")[("GET", "/json")]["Request Count"]) > 0


def test_refused_host_still_reports(tmp_path, refused_url):
    result = run_horde(
        "-f", str(LOCUSTFILES / "weights.py"), "--headless", "-u", "2", "-t", "2s", "-H", refused_url,
        "--csv", str(tmp_path / "r"),
    )  # fmt: skip
    assert result.returncode == 1
    out = result.stdout + result.stderr
    assert "ConnectionRefusedError(111, 'Connection refused')" in out
    failures = (tmp_path / "r_failures.csv").read_text()
    assert "ConnectionRefusedError" in failures


def test_bad_run_time_is_explained(demo):
    result = run_horde("-f", str(LOCUSTFILES / "weights.py"), "--headless", "-t", "10x", "-H", demo.url)
    assert result.returncode != 0
    assert "10x" in result.stderr


def test_unknown_option_suggests_the_right_one():
    # Abbreviations are accepted, as by Locust's parser; a misspelling is not.
    result = run_horde("-f", str(LOCUSTFILES / "weights.py"), "--headlesss", "-t", "1s")
    assert result.returncode != 0
    assert "Did you mean '--headless'?" in result.stderr


def test_list_user_classes():
    result = run_horde("-f", str(LOCUSTFILES / "weights.py"), "-l")
    assert result.returncode == 0
    assert {"Reader", "Writer", "Admin"} <= set(result.stdout.split())


def test_from_horde_imports_work_too(demo, tmp_path):
    f = tmp_path / "native.py"
    f.write_text(
        "from horde import HttpUser, task, constant\n"
        "class U(HttpUser):\n"
        "    wait_time = constant(0.05)\n"
        "    @task\n"
        "    def t(self):\n"
        "        self.client.get('/')\n"
    )
    result = run_horde("-f", str(f), "--headless", "-u", "1", "-t", "1s", "-H", demo.url, "--csv", str(tmp_path / "r"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert ("GET", "/") in stats_rows(tmp_path / "r_stats.csv")


def test_config_file_and_environment_variables(demo, tmp_path):
    (tmp_path / "locust.conf").write_text(
        f"locustfile = {LOCUSTFILES / 'tags.py'}\nheadless = true\nusers = 2\nrun-time = 2s\nhost = {demo.url}\n"
    )
    result = run_horde("--csv", "r", cwd=tmp_path, env={"LOCUST_TAGS": "read"})
    assert result.returncode == 0, result.stderr[-2000:]
    names = {k[1] for k in stats_rows(tmp_path / "r_stats.csv")}
    assert names == {"read", "Aggregated"}


def test_user_classes_chosen_by_name(demo, tmp_path):
    result = run_horde(
        "-f", str(LOCUSTFILES / "wait_times.py"), "--headless", "-u", "2", "-r", "2", "-t", "1s", "-H", demo.url,
        "--csv", str(tmp_path / "r"), "Constant", "Between",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    names = {k[1] for k in stats_rows(tmp_path / "r_stats.csv")}
    assert names == {"Constant", "Between", "Aggregated"}


def test_master_gives_up_waiting_for_workers():
    result = run_horde(
        "-f", str(LOCUSTFILES / "weights.py"), "--master", "--headless", "--master-bind-port", "0",
        "--expect-workers", "2", "--expect-workers-max-wait", "1",
    )  # fmt: skip
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Gave up waiting for workers to connect" in result.stderr


def test_distributed_options_are_checked():
    result = run_horde("-f", str(LOCUSTFILES / "weights.py"), "--master", "--worker")
    assert result.returncode == 255 and "--master argument cannot be combined with --worker" in result.stderr
    result = run_horde("-f", str(LOCUSTFILES / "weights.py"), "--processes", "2", "--master")
    assert result.returncode == 1 and "--master cannot be combined with --processes" in result.stderr
    result = run_horde("-f", str(LOCUSTFILES / "weights.py"), "--processes", "-5")
    assert result.returncode == 1 and "Invalid --processes count -5" in result.stderr


def test_repo_root_is_where_tests_expect_it():
    assert (ROOT / "pyproject.toml").exists()


def test_demo_target_option_runs_without_a_server(tmp_path):
    result = run_horde(
        "-f", str(LOCUSTFILES / "conduit.py"), "--headless", "-u", "4", "-r", "4", "-t", "3s", "--demo-target",
        "--csv", str(tmp_path / "r"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Demo target listening on http://127.0.0.1:" in result.stderr
    assert int(stats_rows(tmp_path / "r_stats.csv")[("", "Aggregated")]["Failure Count"]) == 0


def test_locustfile_directory_and_comma_list():
    result = run_horde("-f", str(LOCUSTFILES), "-l")
    assert result.returncode == 0, result.stderr[-2000:]
    listed = set(result.stdout.split())
    assert {"ConduitUser", "Reader", "ShopUser", "RawUser", "Quitter"} <= listed
    result = run_horde("-f", f"{LOCUSTFILES / 'tags.py'},{LOCUSTFILES / 'markov.py'}", "-l")
    assert result.returncode == 0
    assert {"TaggedUser", "ShopUser"} <= set(result.stdout.split())
    assert "Reader" not in result.stdout


SLOW_TASK = (
    "import gevent\n"
    "from locust import HttpUser, task, constant\n"
    "class Slow(HttpUser):\n"
    "    wait_time = constant(10)\n"
    "    @task\n"
    "    def t(self):\n"
    "        gevent.sleep(1.5)\n"
    "        self.client.get('/echo?after=1', name='after')\n"
)


@pytest.mark.parametrize("stop_timeout, finishes", [("5", True), ("0", False)])
def test_stop_timeout_lets_running_tasks_finish(demo, tmp_path, stop_timeout, finishes):
    f = tmp_path / "slow.py"
    f.write_text(SLOW_TASK)
    result = run_horde(
        "-f", str(f), "--headless", "-u", "1", "-t", "1s", "-H", demo.url, "--stop-timeout", stop_timeout, "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    names = {e["name"] for e in json.loads(result.stdout)}
    assert ("after" in names) is finishes


def test_hdr_json_has_microsecond_percentiles(demo, tmp_path):
    out = tmp_path / "hdr.json"
    result = run_horde(
        "-f", str(LOCUSTFILES / "fasthttp.py"), "--headless", "-u", "2", "-r", "2", "-t", "2s", "-H", demo.url,
        "--hdr-json", str(out),
    )  # fmt: skip
    assert result.returncode == 1  # fasthttp.py fails /status/503 on purpose
    data = json.loads(out.read_text())
    total = data["total"]
    assert total["name"] == "Aggregated" and total["num_requests"] > 0
    p = total["percentiles"]
    assert 0 < p["0.5"] <= p["0.99"] <= p["1.0"] == pytest.approx(total["max_response_time"], rel=1e-3)
    # Sub-millisecond values survive (Locust's buckets would round them to whole milliseconds).
    assert p["0.5"] != round(p["0.5"])
    assert {(e["method"], e["name"]) for e in data["entries"]} >= {("GET", "/"), ("GET", "/status/503")}


def test_demo_target_command_serves_until_sigterm(tmp_path):
    from conftest import free_port, wait_for_port

    port = free_port()
    cert = tmp_path / "cert.pem"
    proc = subprocess.Popen(
        [sys.executable, "-m", "horde.demo", "serve", "--port", str(port), "--tls", "--cert-out", str(cert)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_for_port(port, proc)
        from horde import HttpSession

        assert HttpSession(base_url=f"https://127.0.0.1:{port}", verify=str(cert)).get("/").text == "Hello, World!"
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert f"listening on https://127.0.0.1:{port}" in out

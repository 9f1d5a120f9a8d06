"""Many distinct request names (URLs with ids and no ``name=``): the statistics keep at most
``--max-request-names`` rows and fold the rest into one row per method, with one warning that
says how to name such requests."""

from __future__ import annotations

from cli_helpers import run_horde, stats_rows

import horde
from horde import HttpUser, task
from horde.stats import FOLDED_NAME

UNIQUE = (
    "import itertools\n"
    "from locust import HttpUser, constant, task\n"
    "ids = itertools.count()\n"
    "class Visitor(HttpUser):\n"
    "    wait_time = constant(0)\n"
    "    @task\n"
    "    def item(self):\n"
    "        n = next(ids)\n"
    "        if n < 400:\n"
    "            self.client.get(f'/anything/{n}')\n"
    "            if n % 2:\n"
    "                self.client.post(f'/anything/{n}', json={})\n"
    "        else:\n"
    "            self.stop()\n"
)


def test_names_past_the_limit_fold_into_one_row_with_a_warning(demo, tmp_path):
    path = tmp_path / "unique.py"
    path.write_text(UNIQUE)
    result = run_horde(
        "-f", str(path), "--headless", "-u", "2", "-r", "2", "-t", "4s", "-H", demo.url,
        "--max-request-names", "50", "--csv", str(tmp_path / "run"), "--only-summary",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    rows = stats_rows(tmp_path / "run_stats.csv")
    named = [k for k in rows if k[1] not in ("Aggregated", FOLDED_NAME)]
    assert len(named) == 50
    gets = int(rows[("GET", FOLDED_NAME)]["Request Count"])
    posts = int(rows[("POST", FOLDED_NAME)]["Request Count"])
    total = int(rows[("", "Aggregated")]["Request Count"])
    # Every request counted: 400 GETs and 200 POSTs, in their own rows or the folded ones.
    assert total == 600
    assert gets + posts + sum(int(rows[k]["Request Count"]) for k in named) == 600
    # Warned once while running (if the run lasts until the check), and said in the summary.
    assert result.stderr.count("WARNING/horde.runners: More than 50 distinct request names") <= 1
    assert "\nMore than 50 distinct request names" in result.stderr
    assert 'name="/item/[id]"' in result.stderr


def test_max_request_names_is_checked(tmp_path):
    path = tmp_path / "unique.py"
    path.write_text(UNIQUE)
    result = run_horde("-f", str(path), "--headless", "--max-request-names", "-1")
    assert result.returncode == 2
    assert "argument --max-request-names: must be 0 (no limit) or more, not '-1'" in result.stderr


class Many(HttpUser):
    @task
    def item(self):
        for i in range(30):
            self.client.get(f"/anything/{i}")
        self.stop()


def test_library_runs_keep_the_default_limit_and_samples_fold_too(demo):
    result = horde.run(Many, host=demo.url, users=1, run_time=5, progress=False)
    assert result.environment.stats.max_entries == 10_000
    assert result.num_requests == 30
    result.environment.stats.set_max_entries(0)
    assert result.environment.stats.max_entries == 0

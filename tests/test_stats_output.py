"""horde.stats prints and writes what Locust 2.47 prints and writes for the same logged requests.

The expected texts below were produced by Locust 2.47.0 itself from the same calls (see
``fill``); only time-dependent figures (rates, timestamps) are checked against the stats instead.
"""

# ruff: noqa: E501  (the expected tables are Locust's lines, wider than the code's limit)

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import re
import time
from types import SimpleNamespace

import gevent
import pytest

from horde import stats as hs
from horde.exception import CatchResponseError, HTTPError
from horde.stats import RequestStats, StatsCSV, StatsCSVFileWriter, StatsError

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def fill(stats: RequestStats) -> None:
    """The requests behind every expected text in this file."""
    for rt in (5, 10, 15, 20, 200):
        stats.log_request("GET", "/", rt, 100)
    for rt in (100, 150, 300):
        stats.log_request("POST", "/login", rt, 20)
        if rt == 150:
            stats.log_error("POST", "/login", CatchResponseError("bad password"))
    stats.log_request("GET", "/missing", 4, 0)
    stats.log_error("GET", "/missing", HTTPError("404 Client Error: Not Found for url: /missing"))
    stats.log_request("GET", "/async", None, 0)
    stats.log_error("DELETE", "/gone", ConnectionRefusedError(111, "Connection refused"))


@pytest.fixture(autouse=True)
def fixed_name_width(monkeypatch):
    # The Name column follows the terminal's width; pin it as the expected texts were made.
    monkeypatch.setattr(hs, "STATS_NAME_WIDTH", 40)


@pytest.fixture
def stats() -> RequestStats:
    s = RequestStats()
    fill(s)
    return s


def env_for(stats: RequestStats, runner=None) -> SimpleNamespace:
    return SimpleNamespace(stats=stats, runner=runner, host="http://127.0.0.1:1", locustfile="locustfile.py")


# Locust 2.47.0, STATS_NAME_WIDTH = 40, all requests within one second (current rates are 0).
CONSOLE = """\
Type     Name                                  # reqs      # fails |    Avg     Min     Max    Med |   req/s  failures/s
--------|------------------------------------|-------|-------------|-------|-------|-------|-------|--------|-----------
GET      /                                          5     0(0.00%) |     50       5     200     15 |    0.00        0.00
GET      /async                                     1     0(0.00%) |      0       0       0      0 |    0.00        0.00
DELETE   /gone                                      0   1(100.00%) |      0       0       0      0 |    0.00        0.00
POST     /login                                     3    1(33.33%) |    183     100     300    150 |    0.00        0.00
GET      /missing                                   1   1(100.00%) |      4       4       4      4 |    0.00        0.00
--------|------------------------------------|-------|-------------|-------|-------|-------|-------|--------|-----------
         Aggregated                                10    3(30.00%) |     89       4     300     20 |    0.00        0.00"""

PERCENTILES = """\
Response time percentiles (approximated)
Type     Name                                          50%    66%    75%    80%    90%    95%    98%    99%  99.9% 99.99%   100% # reqs
--------|----------------------------------------|--------|------|------|------|------|------|------|------|------|------|------|------
GET      /                                              15     20     20    200    200    200    200    200    200    200    200      5
POST     /login                                        150    150    300    300    300    300    300    300    300    300    300      3
GET      /missing                                        4      4      4      4      4      4      4      4      4      4      4      1
--------|----------------------------------------|--------|------|------|------|------|------|------|------|------|------|------|------
         Aggregated                                     20    100    150    200    300    300    300    300    300    300    300     10"""

ERRORS = [
    "Error report",
    "# occurrences      Error" + " " * 95,
    "------------------|" + "-" * 101,
    "1                  POST /login: bad password" + " " * 75,
    "1                  GET /missing: HTTPError('404 Client Error: Not Found for url: /missing')" + " " * 28,
    "1                  DELETE /gone: ConnectionRefusedError(111, 'Connection refused')" + " " * 37,
    "------------------|" + "-" * 101,
    "",
]

STATS_CSV = """\
Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,Min Response Time,Max Response Time,\
Average Content Size,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%
GET,/,5,0,15,50.0,5,200,100.0,RPS,FPS,15,20,20,200,200,200,200,200,200,200,200
GET,/async,1,0,0,0.0,0,0,0.0,RPS,FPS,0,0,0,0,0,0,0,0,0,0,0
DELETE,/gone,0,1,0,0.0,0,0,0,RPS,FPS,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A
POST,/login,3,1,150,183.33333333333334,100,300,20.0,RPS,FPS,150,150,300,300,300,300,300,300,300,300,300
GET,/missing,1,1,4,4.0,4,4,0.0,RPS,FPS,4,4,4,4,4,4,4,4,4,4,4
,Aggregated,10,3,20,89.33333333333333,4,300,56.0,RPS,FPS,20,100,150,200,300,300,300,300,300,300,300"""

# Locust orders the failures CSV by error key (a sha256), so this order is Locust's too.
FAILURES = [
    ("GET", "/missing", "HTTPError('404 Client Error: Not Found for url: /missing')", "1"),
    ("POST", "/login", "CatchResponseError('bad password')", "1"),
    ("DELETE", "/gone", "ConnectionRefusedError(111, 'Connection refused')", "1"),
]


# ---------------------------------------------------------------------------------------------
# Console


def test_console_table_is_locusts(stats):
    assert "\n".join(hs.get_stats_summary(stats, current=True)) == CONSOLE


def test_final_console_table_shows_rates_over_the_whole_run(stats):
    view = stats.view()
    lines = hs.get_stats_summary(view, current=False)
    expected = CONSOLE.splitlines()
    rows = [*hs.sort_stats(view.entries), view.total]
    data_lines = lines[2:7] + [lines[8]]
    assert lines[:2] == expected[:2] and lines[7] == expected[7]
    for line, want, entry in zip(data_lines, expected[2:7] + [expected[8]], rows):
        assert line.rsplit("|", 1)[0] == want.rsplit("|", 1)[0]
        assert line.rsplit("|", 1)[1] == f" {entry.total_rps:7.2f} {entry.total_fail_per_sec:11.2f}"
    assert view.total.total_rps > 0


def test_percentile_table_is_locusts(stats):
    assert "\n".join(hs.get_percentile_stats_summary(stats)) == PERCENTILES


def test_error_report_is_locusts(stats):
    assert hs.get_error_report_summary(stats) == ERRORS


def test_print_functions_log_to_locusts_stats_logger(stats, caplog):
    caplog.set_level(logging.INFO, logger="locust.stats_logger")
    hs.print_stats(stats)
    hs.print_percentile_stats(stats)
    hs.print_error_report(stats)
    lines = [r.getMessage() for r in caplog.records if r.name == "locust.stats_logger"]
    assert lines == CONSOLE.splitlines() + [""] + PERCENTILES.splitlines() + [""] + ERRORS


def test_no_error_report_without_failures(caplog):
    caplog.set_level(logging.INFO, logger="locust.stats_logger")
    s = RequestStats()
    s.log_request("GET", "/", 1, 0)
    hs.print_error_report(s)
    assert not caplog.records


def test_stats_printer_prints_every_interval(stats, caplog, monkeypatch):
    monkeypatch.setattr(hs, "CONSOLE_STATS_INTERVAL_SEC", 0.01)
    caplog.set_level(logging.INFO, logger="locust.stats_logger")
    printer = gevent.spawn(hs.stats_printer(stats))

    def headers() -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.getMessage().startswith("Type     Name")]

    # Polled (bounded), not one sleep assumed long enough: a busy machine may run the greenlet late.
    for _ in range(500):
        if len(headers()) >= 2:
            break
        gevent.sleep(0.01)
    printer.kill()
    assert len(headers()) >= 2


def test_name_width_and_percentiles_are_read_when_printing(stats, monkeypatch):
    monkeypatch.setattr(hs, "STATS_NAME_WIDTH", 20)
    monkeypatch.setattr(hs, "PERCENTILES_TO_REPORT", [0.5, 1.0])
    assert hs.get_stats_summary(stats)[1].startswith("--------|" + "-" * 16 + "|")
    assert hs.get_percentile_stats_summary(stats)[1].split() == ["Type", "Name", "50%", "100%", "#", "reqs"]


# ---------------------------------------------------------------------------------------------
# CSV


def rows_of(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_requests_csv_is_locusts(stats):
    out = io.StringIO()
    StatsCSV(env_for(stats), hs.PERCENTILES_TO_REPORT).requests_csv(csv.writer(out))
    got = rows_of(out.getvalue())
    want = rows_of(STATS_CSV)
    assert got[0] == want[0]
    view = stats.view()
    for row, expected, entry in zip(got[1:], want[1:], [*hs.sort_stats(view.entries), view.total], strict=True):
        assert row[:9] + row[11:] == expected[:9] + expected[11:]
        assert float(row[9]) == pytest.approx(entry.total_rps, rel=0.2)
        assert float(row[10]) == pytest.approx(entry.total_fail_per_sec, rel=0.2)


def test_failures_csv_is_locusts(stats):
    out = io.StringIO()
    StatsCSV(env_for(stats), hs.PERCENTILES_TO_REPORT).failures_csv(csv.writer(out))
    header, *rows = rows_of(out.getvalue())
    assert header == ["Method", "Name", "Error", "Occurrences", "First Seen", "Last Seen"]
    assert [tuple(r[:4]) for r in rows] == FAILURES
    assert all(ISO.match(r[4]) and ISO.match(r[5]) for r in rows)


def test_csv_files_are_written_refreshed_and_closed(stats, tmp_path):
    exceptions = {
        "k": {"count": 2, "msg": "ValueError('x')", "traceback": '  File "f.py", line 1\n', "nodes": {"local"}}
    }
    runner = SimpleNamespace(user_count=7, exceptions=exceptions)
    prefix = str(tmp_path / "out" / "run")
    writer = StatsCSVFileWriter(env_for(stats, runner), hs.PERCENTILES_TO_REPORT, prefix)
    writer.write_once(1_700_000_000.9)
    stats.log_request("GET", "/", 50, 100)
    writer.write_once(1_700_000_001.2)
    writer.close_files()

    def read(suffix: str) -> str:
        with open(prefix + suffix, newline="", encoding="utf-8") as f:
            return f.read()

    text = read("_stats.csv")
    assert text.endswith("\r\n") and text.count("\r\n") == 7  # Locust's csv line endings
    stats_rows = rows_of(text)
    assert stats_rows[0] == rows_of(STATS_CSV)[0]
    assert stats_rows[1][:3] == ["GET", "/", "6"]  # rewritten with the latest figures

    history = rows_of(read("_stats_history.csv"))
    assert history[0] == [
        "Timestamp",
        "User Count",
        "Type",
        "Name",
        "Requests/s",
        "Failures/s",
        *hs.get_readable_percentiles(hs.PERCENTILES_TO_REPORT),
        "Total Request Count",
        "Total Failure Count",
        "Total Median Response Time",
        "Total Average Response Time",
        "Total Min Response Time",
        "Total Max Response Time",
        "Total Average Content Size",
    ]
    assert [(r[0], r[1], r[2], r[3]) for r in history[1:]] == [
        ("1700000000", "7", "", "Aggregated"),
        ("1700000001", "7", "", "Aggregated"),
    ]
    assert history[1][4] == "0.000000" and history[1][-7:-5] == ["10", "3"] and history[2][-7] == "11"
    assert history[1][6:17] == ["20", "100", "150", "200", "300", "300", "300", "300", "300", "300", "300"]

    assert [tuple(r[:4]) for r in rows_of(read("_failures.csv"))[1:]] == FAILURES
    assert rows_of(read("_exceptions.csv")) == [
        ["Count", "Message", "Traceback", "Nodes"],
        ["2", "ValueError('x')", '  File "f.py", line 1\n', "local"],
    ]


def test_full_history_has_a_row_per_entry_with_current_percentiles(tmp_path):
    s = RequestStats()
    s.cache_response_times(int(time.time()) - hs.CURRENT_RESPONSE_TIME_PERCENTILE_WINDOW)
    for _ in range(4):
        s.log_request("GET", "/a", 30, 1)
    writer = StatsCSVFileWriter(env_for(s, None), [0.5, 1.0], str(tmp_path / "x"), full_history=True)
    writer.write_once()
    writer.close_files()
    with open(tmp_path / "x_stats_history.csv", newline="") as f:
        rows = rows_of(f.read())
    assert rows[0][6:8] == ["50%", "100%"]
    assert [(r[1], r[2], r[3], r[6], r[7]) for r in rows[1:]] == [
        ("0", "GET", "/a", "30", "30"),
        ("0", "", "Aggregated", "30", "30"),
    ]


def test_stats_writer_greenlet_rewrites_until_closed(stats, tmp_path, monkeypatch):
    monkeypatch.setattr(hs, "CSV_STATS_INTERVAL_SEC", 0.01)
    monkeypatch.setattr(hs, "CSV_STATS_FLUSH_INTERVAL_SEC", 0)  # flushed every time: the file can be polled
    writer = StatsCSVFileWriter(
        env_for(stats, SimpleNamespace(user_count=1, exceptions={})), [0.5], str(tmp_path / "g")
    )
    greenlet = gevent.spawn(writer.stats_writer)
    history = tmp_path / "g_stats_history.csv"
    for _ in range(500):
        if history.exists() and len(rows_of(history.read_text())) >= 3:
            break
        gevent.sleep(0.01)
    writer.close_files()
    greenlet.join(timeout=1)
    assert greenlet.dead
    with open(tmp_path / "g_stats_history.csv", newline="") as f:
        assert len(rows_of(f.read())) >= 3


# ---------------------------------------------------------------------------------------------
# JSON and serialisation


def test_json_is_locusts_serialized_entries(stats, capsys):
    hs.print_stats_json(stats)
    printed = json.loads(capsys.readouterr().out)
    by_key = {(e["method"], e["name"]): e for e in printed}
    assert set(by_key) == {
        ("GET", "/"),
        ("GET", "/async"),
        ("DELETE", "/gone"),
        ("POST", "/login"),
        ("GET", "/missing"),
    }
    assert list(by_key["GET", "/"]) == [
        "name",
        "method",
        "last_request_timestamp",
        "start_time",
        "num_requests",
        "num_none_requests",
        "num_failures",
        "total_response_time",
        "max_response_time",
        "min_response_time",
        "total_content_length",
        "response_times",
        "num_reqs_per_sec",
        "num_fail_per_sec",
    ]
    root = by_key["GET", "/"]
    assert root["total_response_time"] == 250 and root["min_response_time"] == 5 and root["max_response_time"] == 200
    assert root["response_times"] == {"5": 1, "10": 1, "15": 1, "20": 1, "200": 1}
    assert sum(root["num_reqs_per_sec"].values()) == 5 and root["num_fail_per_sec"] == {}
    assert by_key["GET", "/async"]["num_none_requests"] == 1 and by_key["GET", "/async"]["min_response_time"] is None
    gone = by_key["DELETE", "/gone"]
    assert gone["num_requests"] == 0 and gone["last_request_timestamp"] is None and gone["num_failures"] == 1


def test_json_file_gets_the_json_suffix(stats, tmp_path):
    hs.save_stats_json(stats, str(tmp_path / "report"))
    assert json.loads((tmp_path / "report.json").read_text()) == json.loads(json.dumps(stats.serialize_stats()))


def test_entries_without_requests_or_failures_are_not_serialized(stats):
    stats.reset_all()
    assert stats.serialize_stats() == []
    assert len(stats.entries) == 5  # reset keeps the entries, zeroed


def test_web_ui_row_has_locusts_keys_and_figures(stats):
    row = stats.get("/login", "POST").to_dict()
    assert row == {
        "method": "POST",
        "name": "/login",
        "num_requests": 3,
        "num_failures": 1,
        "min_response_time": 100.0,
        "max_response_time": 300.0,
        "current_rps": 0.0,
        "current_fail_per_sec": 0.0,
        "avg_response_time": pytest.approx(183.33333333333334),
        "median_response_time": 150,
        "total_rps": row["total_rps"],
        "total_fail_per_sec": row["total_fail_per_sec"],
        "response_time_percentile_0.95": 300,
        "response_time_percentile_0.99": 300,
        "avg_content_length": 20.0,
    }


# ---------------------------------------------------------------------------------------------
# RequestStats API


def test_errors_are_keyed_and_named_as_in_locust(stats):
    errors = stats.errors
    text = "CatchResponseError('bad password')"
    key = hashlib.sha256(f"POST./login.{text!r}".encode()).hexdigest()
    assert errors[key].error == text and errors[key].occurrences == 1
    assert errors[key].to_name() == "POST /login: bad password"
    assert stats.serialize_errors()[key]["error"] == text
    assert StatsError.create_key("POST", "/login", CatchResponseError("bad password")) == key
    assert StatsError.parse_error("<Foo object at 0x7f00deadbeef>") == "<Foo object at 0x....>"


def test_totals_and_unknown_entries(stats):
    assert (stats.num_requests, stats.num_failures, stats.num_none_requests) == (10, 3, 1)
    assert stats.start_time <= stats.last_request_timestamp
    assert stats.total.name == "Aggregated" and stats.total.method == ""
    empty = stats.get("/never", "GET")
    assert (empty.num_requests, empty.median_response_time, empty.fail_ratio, empty.current_rps) == (0, 0, 0.0, 0)
    assert stats.entries["/never", "PUT"].num_requests == 0  # a missing key gives an empty entry, as in Locust
    with pytest.raises(ValueError):
        empty.percentile()


def test_median_is_held_within_min_and_max():
    s = RequestStats()
    s.log_request("GET", "/slow", 147.3, 0)  # bucket 150 > max
    entry = s.get("/slow", "GET")
    assert entry.median_response_time == 147.3
    assert entry.get_response_time_percentile(0.5) == 150
    assert entry.get_precise_response_time_percentile(0.5) == pytest.approx(147.3, rel=0.001)


def test_clear_all_removes_entries_and_history(stats):
    stats.sample_history(3)
    stats.clear_all()
    assert len(stats.entries) == 0 and stats.history == [] and stats.num_requests == 0 and not stats.errors


def test_current_percentiles_come_from_the_last_ten_seconds():
    s = RequestStats()
    s.log_request("GET", "/", 900, 0)  # before the window: left out of the current figures
    s.cache_response_times(int(time.time()) - hs.CURRENT_RESPONSE_TIME_PERCENTILE_WINDOW)
    for _ in range(3):
        s.log_request("GET", "/", 40, 0)
    view = s.view()
    assert view.total.get_current_response_time_percentile(0.95) == 40
    assert view.entries["/", "GET"].get_current_response_time_percentile(1.0) == 40
    assert view.total.get_response_time_percentile(1.0) == 900


def test_current_percentiles_need_the_cache():
    s = RequestStats(use_response_times_cache=False)
    s.log_request("GET", "/", 1, 0)
    with pytest.raises(ValueError):
        s.total.get_current_response_time_percentile(0.5)
    assert RequestStats().total.get_current_response_time_percentile(0.5) is None  # nothing cached 10 s ago


def test_history_rows_have_locusts_keys():
    s = RequestStats()
    s.log_request("GET", "/", 12.345, 0)
    runner = SimpleNamespace(stats=s, user_count=4, state="running")
    hs.update_stats_history(runner)
    (row,) = s.history
    ts = row["time"]
    assert ISO.match(ts)
    assert row["user_count"] == [ts, 4] and row["total_avg_response_time"] == [ts, 12.35]
    assert {
        "response_time_percentile_0.5",
        "response_time_percentile_0.95",
        "current_rps",
        "current_fail_per_sec",
    } <= set(row)


def test_stats_history_greenlet_samples_while_running(monkeypatch):
    monkeypatch.setattr(hs, "_SAMPLE_INTERVAL_SEC", 0.01)
    monkeypatch.setattr(hs, "HISTORY_STATS_INTERVAL_SEC", 0.02)
    s = RequestStats()
    runner = SimpleNamespace(stats=s, user_count=2, state="running")
    greenlet = gevent.spawn(hs.stats_history, runner)
    for _ in range(500):
        if len(s.history) >= 2:
            break
        gevent.sleep(0.01)
    runner.state = "stopped"
    rows = len(s.history)
    gevent.sleep(0.05)
    greenlet.kill()
    assert rows >= 2 and len(s.history) == rows

    worker = SimpleNamespace(stats=RequestStats(use_response_times_cache=False), user_count=0, state="running")
    assert gevent.spawn(hs.stats_history, worker).join(timeout=1) is None


def test_reset_all_zeroes_and_forgets_history(stats):
    stats.sample_history(1)
    stats.reset_all()
    assert stats.history == [] and stats.num_requests == 0 and not stats.errors
    assert sorted(stats.entries) == [
        ("/", "GET"),
        ("/async", "GET"),
        ("/gone", "DELETE"),
        ("/login", "POST"),
        ("/missing", "GET"),
    ]


def test_readable_percentiles_and_validation():
    assert hs.get_readable_percentiles([0.5, 0.999, 0.9999, 1.0]) == ["50%", "99.9%", "99.99%", "100%"]
    hs.validate_stats_configuration()

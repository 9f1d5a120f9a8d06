"""horde's command line against Locust 2.47's: options, defaults, environment variables, config
files and their precedence, errors, locustfile discovery and options added by locustfiles."""

from __future__ import annotations

import functools
import http.server
import os
import threading
from pathlib import Path

import pytest

import horde
from horde import argument_parser
from horde.argument_parser import (
    DEFAULT_CONFIG_FILES,
    default_args_dict,
    get_locustfiles_locally,
    get_parser,
    parse_locustfile_option,
    parse_locustfile_paths,
    parse_options,
    ui_extra_args_dict,
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch, tmp_path):
    """Each test runs in an empty directory, with an empty home and no LOCUST_*/HORDE_* variables."""
    for name in list(os.environ):
        if name.startswith(("LOCUST_", "HORDE_")):
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


@pytest.fixture
def parser_hook():
    """Registers ``init_command_line_parser`` listeners, as a locustfile does, for one test."""
    added = []

    def register(listener):
        horde.events.init_command_line_parser.add_listener(listener)
        added.append(listener)
        return listener

    yield register
    for listener in added:
        horde.events.init_command_line_parser.remove_listener(listener)


def parse(*args):
    return get_parser().parse_args(list(args))


def fails(capsys, *args, code=2):
    """Parses, expects the program to exit with ``code``; returns what it wrote to stderr."""
    with pytest.raises(SystemExit) as exited:
        parse(*args)
    assert exited.value.code == code
    return capsys.readouterr().err


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# -- options and defaults ------------------------------------------------------------------------


def test_defaults_match_locust():
    options = parse()
    expected = {
        "locustfile": "locustfile.py",
        "config": None,
        "host": None,
        "num_users": None,
        "spawn_rate": None,
        "run_time": None,
        "list_commands": False,
        "config_users": None,
        "web_host": "",
        "web_port": 8089,
        "headless": False,
        "autostart": False,
        "autoquit": -1,
        "headful": False,
        "web_login": False,
        "tls_cert": "",
        "tls_key": "",
        "class_picker": False,
        "web_base_path": "",
        "master": False,
        "master_bind_host": "*",
        "master_bind_port": 5557,
        "expect_workers": 1,
        "expect_workers_max_wait": 0,
        "enable_rebalancing": False,
        "worker": False,
        "processes": None,
        "master_host": "127.0.0.1",
        "master_port": 5557,
        "tags": None,
        "exclude_tags": None,
        "csv_prefix": None,
        "stats_history_enabled": False,
        "print_stats": False,
        "only_summary": False,
        "reset_stats": False,
        "html_file": None,
        "json": False,
        "json_file": None,
        "skip_log_setup": False,
        "loglevel": "INFO",
        "logfile": None,
        "show_task_ratio": False,
        "show_task_ratio_json": False,
        "exit_code_on_error": 1,
        "stop_timeout": 0,
        "equal_weights": False,
        "profile": None,
        "otel": False,
        "threshold": None,
        "threshold_abort": False,
        "user_classes": [],
    }
    assert {k: getattr(options, k) for k in expected} == expected


def test_default_config_files():
    assert DEFAULT_CONFIG_FILES == ("~/.locust.conf", "locust.conf", "pyproject.toml")


def test_long_options():
    options = parse(
        "--locustfile=my.py",
        "--host", "https://example.com",
        "--users", "100",
        "--spawn-rate", "2.5",
        "--run-time", "5m",
        "--headless",
        "--web-host", "127.0.0.1",
        "--web-port", "9000",
        "--csv", "out/run",
        "--csv-full-history",
        "--html", "report.html",
        "--json-file", "stats",
        "--loglevel", "debug",
        "--stop-timeout", "1m",
        "--exit-code-on-error", "3",
        "--expect-workers", "4",
        "--tags", "a", "b",
        "--exclude-tags", "c",
        "--reset-stats",
        "--web-login",
        "--master",
        "--processes", "-1",
        "MyUserClass", "Other",
    )  # fmt: skip
    assert options.locustfile == "my.py"
    assert options.host == "https://example.com"
    assert options.num_users == 100
    assert options.spawn_rate == 2.5
    assert options.run_time == 300
    assert options.headless is True
    assert (options.web_host, options.web_port) == ("127.0.0.1", 9000)
    assert (options.csv_prefix, options.stats_history_enabled) == ("out/run", True)
    assert (options.html_file, options.json_file) == ("report.html", "stats")
    assert options.loglevel == "DEBUG"
    assert options.stop_timeout == 60
    assert options.exit_code_on_error == 3
    assert options.expect_workers == 4
    assert (options.tags, options.exclude_tags) == (["a", "b"], ["c"])
    assert options.reset_stats and options.web_login and options.master
    assert options.processes == -1
    assert options.user_classes == ["MyUserClass", "Other"]


def test_short_options():
    options = parse("-f", "a.py", "-H", "http://h", "-u", "3", "-r", "1", "-t", "90", "-P", "8090", "-L", "WARNING")
    assert (options.locustfile, options.host, options.num_users, options.spawn_rate) == ("a.py", "http://h", 3, 1.0)
    assert (options.run_time, options.web_port, options.loglevel) == (90, 8090, "WARNING")
    options = parse("-l", "-T", "x", "-E", "y", "-s", "10s", "-u5")
    assert (options.list_commands, options.tags, options.exclude_tags, options.stop_timeout) == (True, ["x"], ["y"], 10)
    assert options.num_users == 5


def test_abbreviated_long_option():
    assert parse("--user", "3").num_users == 3


def test_bad_run_time_message(capsys):
    err = fails(capsys, "-t", "10x")
    assert err == (
        "horde: error: argument -t/--run-time: Invalid time span format: '10x'. "
        "Use e.g. 20, 20s, 3m, 2h, 1h20m, 3h30m10s\n"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-u", "x"], "argument -u/--users: invalid int value: 'x'"),
        (["-r", "0"], "argument -r/--spawn-rate: must be > 0"),
        (["-r", "x"], "argument -r/--spawn-rate: invalid float value: 'x'"),
        (["--expect-workers", "0"], "Invalid --expect-workers argument (0), must be a positive number"),
        (["-L", "loud"], "argument --loglevel/-L: invalid choice: 'LOUD'"),
        (["-s", "soon"], "argument -s/--stop-timeout: Invalid time span format: 'soon'"),
        (["--config-users", "{bad"], "The --config-users argument must be a valid JSON string or file"),
        (["--config-users", '{"a": 1}'], "The user config must specify a user_class_name"),
    ],
)
def test_bad_values(capsys, args, message):
    assert message in fails(capsys, *args)


def test_config_users_json_and_file(tmp_path):
    path = write(tmp_path / "users.json", '[{"user_class_name": "A", "fixed_count": 2}]')
    options = parse("--config-users", '{"user_class_name": "B"}', str(path))
    assert options.config_users == [[{"user_class_name": "B"}], [{"user_class_name": "A", "fixed_count": 2}]]


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--web-auth", "a:b"], "The --web-auth parameters has been replaced with --web-login"),
        (["--legacy-ui"], "--legacy-ui is no longer supported"),
        (["--slave"], "The --slave parameter has been renamed --worker"),
        (["--expect-slaves"], "The --expect-slaves parameter has been renamed --expect-workers"),
    ],
)
def test_retired_options_fail_with_their_message(capsys, option, message):
    assert message in fails(capsys, *option)


def test_hidden_options_parse_but_are_not_in_help(capsys):
    options = parse("--headful", "--web-host-display-name", "me", "--build-path", "/b")
    assert (options.headful, options.web_host_display_name, options.build_path) == (True, "me", "/b")
    with pytest.raises(SystemExit):
        parse("--help")
    out = capsys.readouterr().out
    for hidden in ("--headful", "--web-auth", "--legacy-ui", "--slave", "--expect-slaves", "--build-path"):
        assert hidden not in out


def test_unknown_option_suggests_a_close_one(capsys):
    err = fails(capsys, "-f", "x.py", "-u", "100", "--unknown-flag-print-stats", "MyUserClass")
    assert err == "horde: error: unrecognized arguments: --unknown-flag-print-stats\nDid you mean '--print-stats'?\n"


def test_unknown_option_with_value_suggests_without_the_value(capsys):
    assert "Did you mean '--run-time'?" in fails(capsys, "--runtime=5m")


def test_unknown_option_does_not_suggest_hidden_ones(capsys):
    assert "'--slave'" not in fails(capsys, "--slavex")


def test_ambiguous_abbreviation(capsys):
    assert "ambiguous option: --mast could match --master" in fails(capsys, "--mast")


def test_version(capsys):
    with pytest.raises(SystemExit) as exited:
        parse("-V")
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"horde {horde.__version__} (locust 2.47.0 compatible)")


def test_help(capsys):
    with pytest.raises(SystemExit) as exited:
        parse("--help")
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("Usage: horde [options] [UserClass ...]")
    for text in ("Common options:", "Web UI options:", "--run-time", "--threshold <expression>", "Examples:"):
        assert text in out


def test_help_ignores_a_broken_config_file(capsys, clean_environment):
    write(clean_environment / "locust.conf", "= broken\n")
    with pytest.raises(SystemExit) as exited:
        parse("-h")
    assert exited.value.code == 0
    assert "Usage: horde" in capsys.readouterr().out


def test_csv_full_history_needs_csv(capsys):
    with pytest.raises(SystemExit) as exited:
        parse_options(["--csv-full-history"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "deprecated" in err
    assert "horde: error: '--csv-full-history' requires '--csv'." in err
    assert parse_options(["--csv", "x", "--csv-full-history"]).stats_history_enabled is True


# -- environment variables -----------------------------------------------------------------------


def test_options_from_environment(monkeypatch):
    for name, value in {
        "LOCUST_LOCUSTFILE": "env.py",
        "LOCUST_USERS": "100",
        "LOCUST_SPAWN_RATE": "10",
        "LOCUST_RUN_TIME": "5m",
        "LOCUST_RESET_STATS": "true",
        "LOCUST_STOP_TIMEOUT": "5",
        "LOCUST_USER_CLASSES": "MyUserClass Other",
        "LOCUST_HEADLESS": "yes",
        "LOCUST_MODE_MASTER": "1",
        "LOCUST_USERCLASS_PICKER": "on",
        "LOCUST_CSV": "prefix",
        "LOCUST_ENABLE_OPENTELEMETRY": "true",
    }.items():
        monkeypatch.setenv(name, value)
    options = parse()
    assert options.locustfile == "env.py"
    assert (options.num_users, options.spawn_rate, options.run_time, options.stop_timeout) == (100, 10.0, 300, 5)
    assert options.reset_stats and options.headless and options.master and options.class_picker and options.otel
    assert options.csv_prefix == "prefix"
    assert options.user_classes == ["MyUserClass", "Other"]
    assert parse("Mine").user_classes == ["Mine"]


def test_environment_lists(monkeypatch):
    monkeypatch.setenv("LOCUST_TAGS", "[a, b]")
    monkeypatch.setenv("LOCUST_EXCLUDE_TAGS", '["c", "d"]')
    options = parse("MyUser")
    assert (options.tags, options.exclude_tags, options.user_classes) == (["a", "b"], ["c", "d"], ["MyUser"])
    monkeypatch.setenv("LOCUST_TAGS", "a b")  # as in Locust: one tag, spaces and all
    assert parse().tags == ["a b"]


def test_environment_flag_set_to_false(monkeypatch):
    monkeypatch.setenv("LOCUST_HEADLESS", "false")
    assert parse().headless is False


def test_environment_flag_with_a_bad_value(monkeypatch, capsys):
    monkeypatch.setenv("LOCUST_HEADLESS", "maybe")
    err = fails(capsys)
    assert "Unexpected value for LOCUST_HEADLESS: 'maybe'. Expecting 'true', 'false'" in err


def test_environment_value_is_checked_like_a_typed_one(monkeypatch, capsys):
    monkeypatch.setenv("LOCUST_RUN_TIME", "soon")
    assert "argument -t/--run-time: Invalid time span format: 'soon'" in fails(capsys)


# -- config files ----------------------------------------------------------------------------------


def test_locust_conf_format(clean_environment):
    write(
        clean_environment / "locust.conf",
        """
        # a comment
        ; another
        [section headers are skipped]
        locustfile = ./test_locustfile.py
        web-host = 127.0.0.1
        web-port: 45787
        headless
        tags = [Critical, Normal]
        exclude-tags = ["slow"]
        host = "https://example.com"   # trailing comment
        users 10
        --spawn-rate = 2
        only-summary = false
        """,
    )
    options = parse()
    assert options.locustfile == "./test_locustfile.py"
    assert (options.web_host, options.web_port, options.headless) == ("127.0.0.1", 45787, True)
    assert (options.tags, options.exclude_tags) == (["Critical", "Normal"], ["slow"])
    assert (options.host, options.num_users, options.spawn_rate) == ("https://example.com", 10, 2.0)
    assert options.only_summary is False


def test_home_locust_conf(clean_environment, tmp_path):
    write(tmp_path / "home" / ".locust.conf", "users = 7\nhost = home\n")
    write(clean_environment / "locust.conf", "host = here\n")
    options = parse()
    assert (options.num_users, options.host) == (7, "here")


def test_pyproject_tool_locust(clean_environment):
    write(
        clean_environment / "pyproject.toml",
        """
[project]
name = "mine"

[tool.locust]
locustfile = "./test_locustfile.py"
web-host = "127.0.0.1"
web-port = 45787
headless = true
only-summary = false
tags = ["Critical", "Normal"]
spawn-rate = 0.5

[tool.something_else]
this = "is not read"
""",
    )
    options = parse("-H", "https://example.com")
    assert options.locustfile == "./test_locustfile.py"
    assert (options.web_host, options.web_port) == ("127.0.0.1", 45787)
    assert (options.headless, options.only_summary) == (True, False)
    assert (options.tags, options.spawn_rate, options.host) == (["Critical", "Normal"], 0.5, "https://example.com")


def test_pyproject_without_tool_locust_is_fine(clean_environment):
    write(clean_environment / "pyproject.toml", '[project]\nname = "x"\n[tool.ruff]\nline-length = 100\n')
    assert parse().num_users is None


def test_broken_pyproject(clean_environment, capsys):
    write(clean_environment / "pyproject.toml", "[tool.locust\n")
    assert "horde: error: Couldn't parse TOML file pyproject.toml" in fails(capsys)


def test_config_option(clean_environment):
    write(clean_environment / "conf" / "ci.conf", "users = 3\nrun-time = 1h30m\n")
    options = parse("--config", "conf/ci.conf")
    assert (options.num_users, options.run_time, options.config) == (3, 5400, "conf/ci.conf")


def test_config_option_with_toml(clean_environment):
    write(clean_environment / "ci.toml", "[tool.locust]\nusers = 4\nthreshold = ['p95<500', 'fail_ratio<0.01']\n")
    options = parse("--config=ci.toml")
    assert (options.num_users, options.threshold) == (4, ["p95<500", "fail_ratio<0.01"])


def test_missing_config_file(capsys):
    err = fails(capsys, "--config", "nope.conf")
    assert err.startswith("horde: error: Unable to open config file: nope.conf.")


def test_unknown_key_in_config_file(clean_environment, capsys):
    write(clean_environment / "locust.conf", "users = 1\nprint_stats = true\n")
    err = fails(capsys)
    assert err == "horde: error: unknown option 'print_stats' in config file locust.conf\nDid you mean 'print-stats'?\n"


def test_unknown_key_in_pyproject(clean_environment, capsys):
    write(clean_environment / "pyproject.toml", "[tool.locust]\nuserz = 1\n")
    assert "unknown option 'userz' in config file pyproject.toml\nDid you mean 'users'?" in fails(capsys)


def test_bad_line_in_config_file(clean_environment, capsys):
    write(clean_environment / "locust.conf", "users = 1\n= 2\n")
    assert "horde: error: Unexpected line 1 in locust.conf: = 2" in fails(capsys)


def test_bad_flag_value_in_config_file(clean_environment, capsys):
    write(clean_environment / "locust.conf", "headless = maybe\n")
    assert "Unexpected value for headless (in locust.conf): 'maybe'" in fails(capsys)


def test_list_for_a_single_value_option(clean_environment, capsys):
    write(clean_environment / "locust.conf", "host = [a, b]\n")
    assert "host (in locust.conf) can't be set to a list" in fails(capsys)


def test_config_value_is_checked_like_a_typed_one(clean_environment, capsys):
    write(clean_environment / "locust.conf", "users = many\n")
    assert "argument -u/--users: invalid int value: 'many'" in fails(capsys)


def test_list_from_config_does_not_swallow_user_classes(clean_environment):
    write(clean_environment / "locust.conf", "tags = [a, b]\n")
    assert (parse("MyUser").tags, parse("MyUser").user_classes) == (["a", "b"], ["MyUser"])
    options = parse("MyUser", "-u", "2")
    assert (options.tags, options.user_classes, options.num_users) == (["a", "b"], ["MyUser"], 2)


# -- precedence -----------------------------------------------------------------------------------


def test_precedence_across_all_sources(clean_environment, tmp_path, monkeypatch):
    """~/.locust.conf < ./locust.conf < pyproject.toml < --config < LOCUST_* < command line (what
    Locust 2.47 does; its docs put pyproject.toml first): option j is set by the first j + 1
    sources, so the last of them must win."""
    keys = ["logfile", "html", "csv", "tls-cert", "tls-key", "host"]
    write(tmp_path / "home" / ".locust.conf", "".join(f"{k} = home\n" for k in keys))
    write(clean_environment / "locust.conf", "".join(f"{k} = conf\n" for k in keys[1:]))
    write(clean_environment / "pyproject.toml", "[tool.locust]\n" + "".join(f'{k} = "toml"\n' for k in keys[2:]))
    write(clean_environment / "extra.conf", "".join(f"{k} = extra\n" for k in keys[3:]))
    monkeypatch.setenv("LOCUST_TLS_KEY", "env")
    monkeypatch.setenv("LOCUST_HOST", "env")

    options = parse("--config", "extra.conf", "-H", "cli")
    assert options.logfile == "home"
    assert options.html_file == "conf"  # ./locust.conf beats ~/.locust.conf
    assert options.csv_prefix == "toml"  # pyproject.toml beats the .conf files
    assert options.tls_cert == "extra"  # --config beats the default files
    assert options.tls_key == "env"  # the environment beats every file
    assert options.host == "cli"  # the command line beats everything


def test_environment_flag_false_beats_config_true(clean_environment, monkeypatch):
    write(clean_environment / "locust.conf", "headless = true\n")
    assert parse().headless is True
    monkeypatch.setenv("LOCUST_HEADLESS", "false")
    assert parse().headless is False


def test_command_line_list_replaces_config_list(clean_environment, monkeypatch):
    write(clean_environment / "locust.conf", "tags = [a, b]\nthreshold = [p95<100]\n")
    options = parse("-T", "c", "--threshold", "p99<200")
    assert (options.tags, options.threshold) == (["c"], ["p99<200"])


def test_headful_undoes_headless_from_a_file(clean_environment):
    write(clean_environment / "locust.conf", "headless = true\n")
    options = parse("--headful")
    assert options.headless and options.headful  # main() turns headless off when headful is set


# -- horde's own options --------------------------------------------------------------------------


def test_threshold_repeats():
    options = parse("--threshold", "p95<500", "--threshold=fail_ratio<0.01", "--threshold-abort")
    assert options.threshold == ["p95<500", "fail_ratio<0.01"]
    assert options.threshold_abort is True


def test_threshold_from_environment(monkeypatch):
    monkeypatch.setenv("LOCUST_THRESHOLD", "p95<500")
    monkeypatch.setenv("LOCUST_THRESHOLD_ABORT", "true")
    options = parse()
    assert (options.threshold, options.threshold_abort) == (["p95<500"], True)
    monkeypatch.setenv("HORDE_THRESHOLD", '["p99<900", "rps>10"]')
    assert parse().threshold == ["p99<900", "rps>10"]  # HORDE_THRESHOLD wins over LOCUST_THRESHOLD


def test_threshold_from_config_file(clean_environment):
    write(clean_environment / "locust.conf", "threshold = [p95<500, fail_ratio<0.01]\nthreshold-abort = true\n")
    options = parse()
    assert (options.threshold, options.threshold_abort) == (["p95<500", "fail_ratio<0.01"], True)
    write(clean_environment / "locust.conf", "threshold = p95<500\n")
    assert parse().threshold == ["p95<500"]


def test_locustfile_may_declare_its_own_threshold_option(parser_hook):
    @parser_hook
    def _(parser, **_kw):
        parser.add_argument("--threshold", type=int, default=5)

    assert parse().threshold == 5
    assert parse("--threshold", "9").threshold == 9


# -- options added by locustfiles -------------------------------------------------------------------


def test_custom_arguments(parser_hook):
    @parser_hook
    def _(parser, **_kw):
        parser.add_argument("--custom-bool-arg", action="store_true", help="Custom boolean flag")
        parser.add_argument("--custom-string-arg", help="Custom string arg")

    options = parse("-u", "666", "--custom-bool-arg", "--custom-string-arg", "HEJ")
    assert (options.num_users, options.custom_string_arg, options.custom_bool_arg) == (666, "HEJ", True)


def test_custom_arguments_in_help(parser_hook, capsys):
    @parser_hook
    def _(parser):
        parser.add_argument("--custom-bool-arg", action="store_true", help="Custom boolean flag")

    with pytest.raises(SystemExit):
        parse("--help")
    assert "Custom boolean flag" in capsys.readouterr().out


def test_custom_arguments_from_environment(parser_hook, monkeypatch):
    @parser_hook
    def _(parser):
        parser.add_argument("--my-arg", default="default")
        parser.add_argument("--my-flag", action="store_true")
        parser.add_argument("--named", default="d", env_var="MY_OWN_NAME")
        group = parser.add_argument_group("mine")
        group.add_argument("--in-group", type=int, default=0)

    assert (parse().my_arg, parse().named, parse().in_group) == ("default", "d", 0)
    monkeypatch.setenv("LOCUST_MY_ARG", "from env")
    monkeypatch.setenv("LOCUST_MY_FLAG", "true")
    monkeypatch.setenv("MY_OWN_NAME", "named")
    monkeypatch.setenv("LOCUST_IN_GROUP", "3")
    options = parse()
    assert (options.my_arg, options.my_flag, options.named, options.in_group) == ("from env", True, "named", 3)
    assert parse("--my-arg", "cli").my_arg == "cli"


def test_custom_arguments_from_config_files(parser_hook, clean_environment):
    @parser_hook
    def _(parser):
        parser.add_argument("--my-arg", default="default")
        parser.add_argument("--my-list", action="append")

    write(clean_environment / "locust.conf", "my-arg = conf\nmy-list = [a, b]\n")
    write(clean_environment / "pyproject.toml", "[tool.locust]\nmy-arg = 'toml'\n")
    options = parse()
    assert (options.my_arg, options.my_list) == ("toml", ["a", "b"])


def test_custom_argument_web_ui_keywords(parser_hook):
    @parser_hook
    def _(parser):
        parser.add_argument("--a1", help="a1 help")
        parser.add_argument("--a2", help="a2 help", include_in_web_ui=False)
        parser.add_argument("--a3", help="a3 help", is_secret=True)
        parser.add_argument("--a4", help="a4 help", is_required=True)
        parser.add_argument("--a5", choices=["x", "y"], default="x", is_multiple=True)
        parser.add_argument_group("group").add_argument("--a6", help="groups stay out of the UI, as in Locust")

    parser = get_parser()
    action = parser.args_included_in_web_ui["a3"]
    assert (action.include_in_web_ui, action.is_secret, action.is_required, action.is_multiple) == (
        True,
        True,
        False,
        False,
    )
    assert set(parser.secret_args_included_in_web_ui) == {"a3"}
    assert set(parser.required_args_included_in_web_ui) == {"a4"}
    assert set(parser.multiple_args_included_in_web_ui) == {"a5"}

    args = ["-u", "666", "--a1", "v1", "--a2", "v2", "--a3", "v3"]
    extra = ui_extra_args_dict(args)
    assert set(extra) == {"a1", "a3", "a4", "a5"}
    assert extra["a1"] == {
        "default_value": "v1",
        "is_secret": False,
        "is_required": False,
        "help_text": "a1 help",
        "is_multiple": False,
        "choices": None,
    }
    assert extra["a5"]["choices"] == ["x", "y"] and extra["a5"]["is_multiple"] is True


def test_default_args_dict_has_only_builtin_options(parser_hook, clean_environment):
    @parser_hook
    def _(parser):
        parser.add_argument("--custom")

    write(clean_environment / "locust.conf", "custom = 1\n")  # would be unknown to the built-in parser
    defaults = default_args_dict()
    assert "custom" not in defaults
    assert defaults["web_port"] == 8089 and defaults["num_users"] is None


def test_parse_and_parse_known_aliases():
    parser = get_parser(default_config_files=[])
    assert parser.parse(["-u", "2"]).num_users == 2
    options, extras = parser.parse_known(["-u", "2", "--nope"])
    assert (options.num_users, extras) == (2, ["--nope"])
    assert parser.parse_args([], env_vars={"LOCUST_USERS": "8"}).num_users == 8


# -- locustfiles ----------------------------------------------------------------------------------


def locustfiles_for(*args):
    return get_locustfiles_locally(parse_locustfile_option(list(args)))


def test_locustfile_default_and_single_file(clean_environment):
    write(clean_environment / "locustfile.py", "")
    write(clean_environment / "other.py", "")
    assert locustfiles_for() == [str(clean_environment / "locustfile.py")]
    found = locustfiles_for("-f", "other.py", "-u", "10", "--headless", "MyUser")
    assert found == [str(clean_environment / "other.py")]


def test_locustfile_comma_list(clean_environment):
    a = write(clean_environment / "a.py", "")
    b = write(clean_environment / "sub" / "b.py", "")
    assert locustfiles_for("-f", "a.py, sub/b.py") == [str(a), str(b)]


def test_locustfile_directory(clean_environment):
    write(clean_environment / "tests" / "z_last.py", "")
    write(clean_environment / "tests" / "a_first.py", "")
    write(clean_environment / "tests" / "nested" / "m.py", "")
    write(clean_environment / "tests" / "_private.py", "")
    write(clean_environment / "tests" / "__init__.py", "")
    write(clean_environment / "tests" / "notes.txt", "")
    write(clean_environment / "single.py", "")
    found = locustfiles_for("-f", "tests,single.py")
    root = clean_environment / "tests"
    assert found == [str(root / "a_first.py"), str(root / "nested" / "m.py"), str(root / "z_last.py")] + [
        str(clean_environment / "single.py")
    ]


def test_locustfile_module_name(clean_environment):
    write(clean_environment / "my_test.py", "")
    assert locustfiles_for("-f", "my_test") == [str(clean_environment / "my_test.py")]


def test_locustfile_missing(capsys):
    with pytest.raises(SystemExit) as exited:
        locustfiles_for("-f", "nope.py")
    assert exited.value.code == 1
    assert capsys.readouterr().err == (
        "Could not find 'nope.py'. Ensure your locustfile ends with '.py' or is a directory with locustfiles. "
        "See --help for available options.\n"
    )


def test_locustfile_default_missing(capsys):
    with pytest.raises(SystemExit) as exited:
        locustfiles_for()
    assert exited.value.code == 1
    assert "Could not find 'locustfile.py'" in capsys.readouterr().err


def test_locustfile_not_python(clean_environment, capsys):
    write(clean_environment / "notes.txt", "")
    with pytest.raises(SystemExit):
        parse_locustfile_paths(["notes.txt"])
    assert "Could not find 'notes.txt'" in capsys.readouterr().err


def test_locustfile_empty_directory(clean_environment, capsys):
    (clean_environment / "empty").mkdir()
    with pytest.raises(SystemExit) as exited:
        locustfiles_for("-f", "empty")
    assert exited.value.code == 1
    assert capsys.readouterr().err == "Could not find any locustfiles in directory 'empty'\n"


def test_locustfile_dash_needs_worker(capsys):
    with pytest.raises(SystemExit) as exited:
        locustfiles_for("-f", "-")
    assert exited.value.code == 1
    assert "locustfile was set to '-' (meaning to download from master) but --worker was not specified." in (
        capsys.readouterr().err
    )


def test_locustfile_from_url(tmp_path):
    served = tmp_path / "served"
    write(served / "remote_test.py", "from locust import HttpUser\n")
    write(served / "broken.py", "this is not python(\n")
    handler = functools.partial(_QuietHandler, directory=str(served))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            base = f"http://127.0.0.1:{server.server_address[1]}"
            [path] = parse_locustfile_paths([f"{base}/remote_test.py"])
            assert os.path.basename(path) == "remote_test.py"
            assert Path(path).read_text() == "from locust import HttpUser\n"
            argument_parser.exit_handler(path)
            assert not os.path.exists(path)
            with pytest.raises(SystemExit):
                parse_locustfile_paths([f"{base}/broken.py"])
            with pytest.raises(SystemExit):
                parse_locustfile_paths([f"{base}/missing.py"])
        finally:
            server.shutdown()
            thread.join(timeout=5)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - argparse's signature
        pass


def test_first_pass_reads_locustfile_from_environment_and_files(clean_environment, monkeypatch):
    write(clean_environment / "locust.conf", "locustfile = from_conf.py\nusers = 5\nmy-custom-option = 1\n")
    assert parse_locustfile_option([]).locustfile == "from_conf.py"  # unknown keys are for the second pass
    monkeypatch.setenv("LOCUST_LOCUSTFILE", "from_env.py")
    assert parse_locustfile_option([]).locustfile == "from_env.py"
    options = parse_locustfile_option(["-f", "cli.py", "--my-custom-option", "x", "-u", "3", "MyUser"])
    assert options.locustfile == "cli.py"
    assert (options.worker, options.master) == (False, False)
    assert (options.master_host, options.master_port) == ("127.0.0.1", 5557)


def test_first_pass_knows_worker_settings(monkeypatch):
    monkeypatch.setenv("LOCUST_MASTER_NODE_PORT", "6000")
    options = parse_locustfile_option(["--worker", "--master-host", "10.0.0.1", "--master"])
    assert (options.worker, options.master, options.master_host, options.master_port) == (True, True, "10.0.0.1", 6000)


@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_first_pass_prints_help(capsys, flag):
    with pytest.raises(SystemExit) as exited:
        parse_locustfile_option(["-f", "whatever.py", flag])
    assert exited.value.code == 0
    assert capsys.readouterr().out.startswith("Usage: horde [options] [UserClass ...]")


def test_first_pass_prints_version(capsys):
    with pytest.raises(SystemExit) as exited:
        parse_locustfile_option(["-V"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.startswith(f"horde {horde.__version__} ")


def test_two_pass_flow(parser_hook, clean_environment, monkeypatch):
    """What main() does: find the locustfile, import it (it adds an option), then parse everything."""
    write(clean_environment / "locust.conf", "run-time = 10s\nenvironment-name = staging\n")
    locustfile = write(clean_environment / "lf.py", "")
    monkeypatch.setattr("sys.argv", ["horde", "-f", "lf.py", "--headless", "-u", "2"])
    options = parse_locustfile_option()
    assert get_locustfiles_locally(options) == [str(locustfile)]

    @parser_hook  # importing the locustfile registers this
    def _(parser):
        parser.add_argument("--environment-name", default="dev", include_in_web_ui=True)

    options = get_parser().parse_args()
    assert (options.headless, options.num_users, options.run_time, options.environment_name) == (True, 2, 10, "staging")

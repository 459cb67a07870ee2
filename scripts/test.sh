#!/usr/bin/env bash
# Set up everything the tests need (venv, dev requirements, Chromium for the browser test) and run
# the whole suite: ruff, then pytest. The README's test command and CI (.ci/run) both run this.
#
#   bash scripts/test.sh            # everything (~15 minutes on 2 cores)
#   bash scripts/test.sh --quick    # ruff + the tests that need no browser, no AppTest run, no
#                                   # training and no subprocess (`-m quick`, under a minute)
#   bash scripts/test.sh -k mixture # any other arguments go to pytest
#
# Tiers are markers that tests/conftest.py sets from what each test reaches (tests/tiers.py);
# `pytest --collect-only -q -m quick` lists the quick one.
set -euo pipefail
cd "$(dirname "$0")/.."

QUICK=0
if [ "${1:-}" = "--quick" ]; then
  QUICK=1
  shift
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q -r requirements-dev.txt

# The browser tests drive Debian's Chromium (Playwright cannot download its own browser here);
# the replica test runs HAProxy. The quick tier needs neither.
if [ "$QUICK" = 0 ] && { [ ! -x /usr/bin/chromium ] || ! command -v haproxy >/dev/null; }; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq chromium fonts-noto-color-emoji haproxy >/dev/null
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    sudo apt-get update -qq && sudo apt-get install -y -qq chromium fonts-noto-color-emoji haproxy >/dev/null
  else
    echo "note: /usr/bin/chromium not found and no root to install it; browser tests will skip" >&2
  fi
fi

# Spinning OpenMP waits make torch crawl when both cores are busy (see app.py).
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}

.venv/bin/ruff check .
.venv/bin/ruff format --check .
if [ "$QUICK" = 1 ]; then
  .venv/bin/python -m pytest -m quick "$@"
else
  .venv/bin/python -m pytest "$@"
fi

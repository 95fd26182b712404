#!/usr/bin/env bash
# Install everything the test suite needs, then lint and run the whole suite.
# Extra arguments go to pytest (for example: bash scripts/test.sh -k config -x).
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || { echo "Ferrite needs Python 3.11 or newer for python3" >&2; exit 1; }

# Real components the tests drive: libfaketime moves a real server across midnight;
# Debian's Chromium runs the tracker and the dashboard; Node.js and npm rebuild their committed
# files to check them.
missing=()
command -v faketime >/dev/null || missing+=(faketime)
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v npm >/dev/null || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

[ -d tracker/node_modules ] || npm ci --prefix tracker --no-audit --no-fund --silent
# uPlot (the dashboard's chart) and terser, pinned, to check the committed dashboard build
[ -d dashboard-ui/node_modules ] || npm ci --prefix dashboard-ui --no-audit --no-fund --silent

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check \
  -e '.[test]' -e examples/ferrite-csv-sink

# A throwaway PostgreSQL cluster for the postgres plugin's tests (stopped and removed on exit).
source scripts/postgres.sh

# Labelled user-agent corpora from pinned registry packages, for the bot-detection tests.
.venv/bin/python tests/bot_corpora.py

.venv/bin/ruff check .
.venv/bin/python -m pytest "$@"

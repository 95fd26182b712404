#!/usr/bin/env bash
# Install everything the test suite needs into .venv, then lint and run the whole suite.
# Extra arguments go to pytest (for example: bash scripts/test.sh -k config -x).
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || { echo "Ferrite needs Python 3.11 or newer for python3" >&2; exit 1; }
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check \
  -e '.[test]' -e examples/ferrite-csv-sink

.venv/bin/ruff check .
.venv/bin/python -m pytest "$@"
